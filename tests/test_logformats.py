"""The Kafka topic bootstrap's ``print`` lines (HuleEdu scripts/kafka_topic_bootstrap.py) carry no
level but their leading emoji: every one the script prints must give its line a level and keep it a
line of its own. The lines are spelled here, independently of model/logformats.py, so a missing emoji
there fails this test."""

from __future__ import annotations

import pandas as pd
import pytest

from huledu_forensics.logs import parse_lines

STAMP = "2025-12-15T09:52:47.{:06d}000Z "
PRINTS = [
    ("🚀 HuleEdu Kafka Topic Bootstrap", "info"),
    ("📡 Connecting to: kafka:9092", "info"),
    ("⚙️  Config: 10 retries, 2.0s delay, 3 partitions, 1 replicas", "info"),
    ("✅ Successfully connected to Kafka", "info"),
    ("⚠️  Connection failed: timed out. Retrying in 2.0s...", "warning"),
    ("📋 Discovered 36 topics from common_core mapping:", "info"),
    ("📊 Found 39 existing topics in cluster", "info"),
    ("ℹ️  Topic already exists: huleedu.batch.essays.registered.v1", "info"),  # noqa: RUF001 - the emoji
    ("❌ Failed to create topic huleedu.batch.essays.registered.v1: boom", "error"),
    ("🎉 Kafka topic bootstrap completed successfully", "info"),
]


@pytest.mark.parametrize(("text", "level"), PRINTS, ids=[t.split()[1].lower().strip(":") for t, _ in PRINTS])
def test_each_bootstrap_print_is_its_own_line_with_its_level(text: str, level: str) -> None:
    lines = [STAMP.format(1) + "Attempting to connect to Kafka (attempt 1/10)...", STAMP.format(2) + text]
    df = parse_lines(lines, container="huleedu_kafka_topic_setup", source_file="logs/setup.log")
    assert len(df) == 2
    row = df.iloc[1]
    assert row["message"] == text and row["level"] == level
    assert pd.isna(row["parent_line"])  # not a continuation of the line before
