"""Output safety: what untrusted text (log lines, row values, ids, bundle names) may look like on the
way out, and what a child process may inherit.

Everything the kit reads from a HuleEdu stack or a bundle is untrusted. It is stored byte for byte and
escaped only for display:

- :func:`printable` for a terminal or a one-line message: control characters (C0 except tab, DEL, C1,
  bidirectional overrides, undecodable bytes) become visible ``\\xNN``/``\\uNNNN`` text, and long
  values are cut with a note of how much was cut;
- :func:`markdown_safe` for Markdown the kit writes (postmortem.md, notebook Markdown outputs): the
  above, plus no raw HTML (``<`` becomes ``&lt;`` outside fenced code) and no inline link or image
  (``](`` becomes ``]\\(``), so no script runs and nothing is fetched when the Markdown is rendered;
- :func:`check_id` for an id given on the command line: the minimum shape of a HuleEdu id;
- :func:`child_env` for a child process that does not connect to a database (the notebook kernel, a
  browser): the environment without secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from .errors import ConfigError

__all__ = [
    "ID_MAX_CHARS",
    "ID_MIN_CHARS",
    "check_id",
    "child_env",
    "clip",
    "is_secret_env",
    "markdown_safe",
    "plotly_text",
    "printable",
    "register_secret_env",
]

# C0 controls except TAB and LF, DEL, C1 controls, bidi overrides/isolates, lone surrogates
# (undecodable bytes held by surrogateescape), line/paragraph separators, BOM.
_UNSAFE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
                        "\u2028\u2029\ufeff\ud800-\udfff]")
_UNSAFE_NL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
                           "\u2028\u2029\ufeff\ud800-\udfff]")


def _visible(m: re.Match[str]) -> str:
    c = m.group(0)
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, saying how many were cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


def printable(value: object, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """``value`` as text that is safe on a terminal: no escape sequence, no control character.

    Control characters become visible ``\\xNN`` (so nothing is hidden), newlines too unless
    ``keep_newlines``; with ``limit`` the text is cut (see :func:`clip`) before escaping.
    """
    text = value if isinstance(value, str) else str(value)
    if limit is not None:
        text = clip(text, limit)
    return (_UNSAFE_RE if keep_newlines else _UNSAFE_NL_RE).sub(_visible, text)


_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_safe(md: str) -> str:
    """Neutralise untrusted text inside Markdown the kit generated.

    Outside fenced code blocks: ``<`` becomes ``&lt;`` (no raw HTML, no autolink) and ``](`` becomes
    ``]\\(`` (no inline link or image). Everywhere: control characters become visible text. The kit's
    own Markdown uses neither raw HTML nor links in the parts this is applied to.
    """
    out = []
    fence: str | None = None
    for line in printable(md, keep_newlines=True).split("\n"):
        m = _FENCE_RE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)[0] * len(m.group(1))
            else:
                line = line.replace("<", "&lt;").replace("](", "]\\(")
        elif m and m.group(1).startswith(fence) and not line.strip().strip(fence[0]):
            fence = None
        out.append(line)
    return "\n".join(out)


def plotly_text(value: object, limit: int | None = None) -> str:
    """``value`` for a plotly label or hover text, which plotly reads as a small subset of HTML
    (``<a href>``, ``<b>``, ``<br>``): every ``<``, ``>`` and ``&`` from the evidence is an entity,
    so it shows as itself and makes no link or markup."""
    text = printable(value, limit)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- ids ---------------------------------------------------------------------------------------------
ID_MIN_CHARS = 8
ID_MAX_CHARS = 128
_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:-]*")
_UUID_REPR_RE = re.compile(r"""^UUID\(\s*['"]([^'"]*)['"]\s*\)$""")


def check_id(value: object, option: str = "--id") -> str:
    """Return ``value`` stripped if it has the shape of a HuleEdu id, else raise :class:`ConfigError`.

    A HuleEdu id is a UUID, a 32-hex storage id or a similar token: ``ID_MIN_CHARS`` to
    ``ID_MAX_CHARS`` characters of letters, digits and ``_ . : -``, starting with a letter or digit
    and holding at least ``ID_MIN_CHARS`` letters or digits. Shorter values (``a``, ``-``) would match
    almost every log line as a substring. ``UUID('…')`` is accepted. The message never echoes more
    than a few dozen characters of a bad value.
    """
    text = "" if value is None else str(value).strip()
    m = _UUID_REPR_RE.match(text)
    if m:
        text = m.group(1).strip()
    shown = printable(text, 40)
    if not text:
        raise ConfigError(f"No id given. Pass a batch, correlation or essay id with {option}.")
    if len(text) > ID_MAX_CHARS:
        raise ConfigError(f"{option} {shown!r} is {len(text)} characters long; a HuleEdu id has at most "
                          f"{ID_MAX_CHARS}. Pass a batch, correlation or essay id (a UUID).")
    alnum = sum(c.isascii() and c.isalnum() for c in text)
    if not _ID_RE.fullmatch(text) or alnum < ID_MIN_CHARS:
        raise ConfigError(f"{option} {shown!r} is not an id: a HuleEdu id is a UUID or a token of at "
                          f"least {ID_MIN_CHARS} letters or digits (allowed: letters, digits, _ . : -). "
                          "Pass a batch, correlation or essay id.")
    return text


# ---- environment -------------------------------------------------------------------------------------
_SECRET_NAME_RE = re.compile(
    r"PASSW|PASSWD|PWD$|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE|_DSN$|^DATABASE_URL$|_AUTH$|"
    r"^PGPASS|^HULEDU_FORENSICS_.*_(DSN|URL)$|SESSION|COOKIE", re.IGNORECASE)
_URL_CRED_RE = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_KEEP = {"PWD", "OLDPWD"}  # the working directory, not a password
_REGISTERED: set[str] = set()


def register_secret_env(name: str | None) -> None:
    """Remember that variable ``name`` holds a secret (a profile's ``password_env``), whatever its name."""
    if name:
        _REGISTERED.add(name)


def is_secret_env(name: str, value: str, extra_names: Iterable[str] = ()) -> bool:
    """Whether an environment variable may hold a secret (by its name, or a URL with a password)."""
    if name in _REGISTERED or name in set(extra_names):
        return True
    if name in _KEEP:
        return False
    return bool(_SECRET_NAME_RE.search(name) or _URL_CRED_RE.search(value or ""))


def child_env(base: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) without any variable that may hold a secret.

    ``extra_names``: further variable names to drop (e.g. a profile's ``password_env``).
    """
    env = dict(os.environ if base is None else base)
    extra = set(extra_names)
    return {k: v for k, v in env.items() if not is_secret_env(k, v, extra)}
