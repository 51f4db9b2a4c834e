"""Check a participant's SDP answer before it reaches aiortc.

aiortc's SDP parser trusts its input (a huge or odd SDP costs CPU and can raise
anything), so every answer is checked here first: size, line syntax, number of
media sections, that only VP8 (with its RTX) and Opus are negotiated, and that
every media section has its DTLS fingerprint and ICE credentials.
Pure: no I/O, no aiortc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Default upper bound on an SDP's size in bytes (a 12-person room answer from
#: Chromium is about 30 KB; messages are capped at 64 KiB anyway).
MAX_SDP_BYTES = 60_000
#: Default upper bound on media sections (2 published + 2 per other participant).
MAX_MEDIA_SECTIONS = 64

_ALLOWED_CODECS = {"audio": {"opus"}, "video": {"vp8", "rtx"}}
_DIRECTIONS = {"sendrecv", "sendonly", "recvonly", "inactive"}
_LINE = re.compile(r"^([a-z])=(.*)$")
_MEDIA = re.compile(r"^(audio|video|application) (\d{1,5}) ([A-Z/]{3,32}) ([0-9 ]{1,200})$")
_RTPMAP = re.compile(r"^rtpmap:(\d{1,3}) ([A-Za-z0-9_.-]{1,32})/(\d{1,6})(?:/(\d{1,2}))?$")
_MID = re.compile(r"^mid:([A-Za-z0-9_.-]{1,32})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FINGERPRINT = re.compile(
    r"^fingerprint:sha-(?:1|224|256|384|512) [0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+$"
)
# Transport attributes aiortc needs: without them it accepts the answer and
# then fails in a background task, so they are required here.
_TRANSPORT = ("fingerprint", "ice-ufrag", "ice-pwd")


class InvalidSdp(ValueError):
    """The SDP is refused; ``reason`` says why in a few words safe to send back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MediaSection:
    """What the check learned about one m-section."""

    kind: str
    mid: str
    direction: str
    codecs: tuple[str, ...]


def check_answer(
    sdp: object,
    *,
    max_bytes: int = MAX_SDP_BYTES,
    max_media_sections: int = MAX_MEDIA_SECTIONS,
    expected_media_sections: int | None = None,
) -> list[MediaSection]:
    """Validate an SDP answer; return its media sections or raise :class:`InvalidSdp`.

    ``expected_media_sections``, when given, must match exactly (an answer has
    one m-section per m-section of the offer).
    """
    if not isinstance(sdp, str):
        raise InvalidSdp("sdp must be a string")
    if len(sdp.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidSdp(f"sdp larger than {max_bytes} bytes")
    if _CONTROL.search(sdp):
        raise InvalidSdp("sdp contains control characters")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        raise InvalidSdp("sdp must start with v=0")

    sections: list[MediaSection] = []
    current: dict[str, object] | None = None
    session: set[str] = set()  # transport attributes given at session level

    def close_section() -> None:
        if current is None:
            return
        kind = str(current["kind"])
        if kind == "application":
            raise InvalidSdp("data channels are not offered")
        mid = current.get("mid")
        if not isinstance(mid, str):
            raise InvalidSdp(f"media section {len(sections)} has no mid")
        codecs = current["codecs"]
        assert isinstance(codecs, dict)
        port = current["port"]
        payload_types = current["fmt"]
        assert isinstance(payload_types, list)
        if port != 0:
            if not codecs:
                raise InvalidSdp(f"media section {mid} has no rtpmap")
            for pt in codecs:
                if pt not in payload_types:
                    raise InvalidSdp(f"media section {mid} maps a payload type it does not list")
            names = {str(name) for name in codecs.values()}
            if not names <= _ALLOWED_CODECS[kind]:
                raise InvalidSdp(f"only VP8 and Opus are accepted (media section {mid})")
            if kind == "video" and "vp8" not in names:
                raise InvalidSdp(f"media section {mid} lacks VP8")
            given = current["transport"]
            assert isinstance(given, set)
            for attribute in _TRANSPORT:
                if attribute not in given and attribute not in session:
                    raise InvalidSdp(f"media section {mid} has no {attribute}")
        sections.append(
            MediaSection(
                kind=kind,
                mid=mid,
                direction=str(current.get("direction", "sendrecv")),
                codecs=tuple(str(n) for n in codecs.values()),
            )
        )

    for line in lines:
        match = _LINE.match(line)
        if match is None:
            raise InvalidSdp("malformed sdp line")
        key, value = match.groups()
        if key == "m":
            close_section()
            if len(sections) >= max_media_sections:
                raise InvalidSdp(f"more than {max_media_sections} media sections")
            media = _MEDIA.match(value)
            if media is None:
                raise InvalidSdp("malformed m= line")
            current = {
                "kind": media.group(1),
                "port": int(media.group(2)),
                "fmt": [int(pt) for pt in media.group(4).split()],
                "codecs": {},
                "transport": set(),
            }
        elif key == "a" and value.split(":", 1)[0] in _TRANSPORT:
            name = value.split(":", 1)[0]
            if name == "fingerprint" and _FINGERPRINT.match(value) is None:
                raise InvalidSdp("malformed fingerprint")
            if name != "fingerprint" and not value[len(name) + 1 :].strip():
                raise InvalidSdp(f"empty {name}")
            if current is None:
                session.add(name)
            else:
                transport = current["transport"]
                assert isinstance(transport, set)
                transport.add(name)
        elif key == "a" and current is not None:
            if value.startswith("rtpmap:"):
                rtpmap = _RTPMAP.match(value)
                if rtpmap is None:
                    raise InvalidSdp("malformed rtpmap")
                codecs = current["codecs"]
                assert isinstance(codecs, dict)
                codecs[int(rtpmap.group(1))] = rtpmap.group(2).lower()
            elif value.startswith("mid:"):
                mid = _MID.match(value)
                if mid is None or "mid" in current:
                    raise InvalidSdp("malformed or repeated mid")
                current["mid"] = mid.group(1)
            elif value in _DIRECTIONS:
                current["direction"] = value
    close_section()

    if not sections:
        raise InvalidSdp("sdp has no media sections")
    if expected_media_sections is not None and len(sections) != expected_media_sections:
        raise InvalidSdp(
            f"answer has {len(sections)} media sections, the offer had {expected_media_sections}"
        )
    if len({s.mid for s in sections}) != len(sections):
        raise InvalidSdp("duplicate mid")
    return sections
