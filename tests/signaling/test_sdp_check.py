"""The SDP answer check that runs before anything reaches aiortc."""

from __future__ import annotations

import pytest

from signaling.sdp_check import InvalidSdp, check_answer

HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
TRANSPORT = (
    "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
)
AUDIO = (
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtpmap:111 opus/48000/2\r\n" + TRANSPORT
)
VIDEO = (
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" + TRANSPORT
)
GOOD = HEAD + AUDIO + VIDEO


def test_accepts_vp8_and_opus() -> None:
    sections = check_answer(GOOD, expected_media_sections=2)
    assert [(s.kind, s.mid, s.direction) for s in sections] == [
        ("audio", "0", "sendonly"),
        ("video", "1", "sendonly"),
    ]
    assert sections[1].codecs == ("vp8", "rtx")


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        (None, "must be a string"),
        ("", "v=0"),
        ("hello", "v=0"),
        (GOOD + "a=" + "x" * 70_000 + "\r\n", "larger than"),
        (GOOD + "zz\r\n", "malformed sdp line"),
        (GOOD.replace("\r\nt=0 0", "\r\nt=0 0\x00"), "control characters"),
        (GOOD.replace("VP8/90000", "H264/90000"), "only VP8 and Opus"),
        (GOOD.replace("opus/48000/2", "PCMU/8000"), "only VP8 and Opus"),
        (GOOD.replace("a=rtpmap:96 VP8/90000\r\n", ""), "lacks VP8"),
        (GOOD.replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video nine RTP 96"), "m= line"),
        (GOOD.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus"), "malformed rtpmap"),
        (GOOD.replace("a=rtpmap:111", "a=rtpmap:112"), "does not list"),
        (GOOD.replace("a=mid:1", "a=mid:0"), "duplicate mid"),
        (GOOD.replace("a=mid:1\r\n", ""), "has no mid"),
        (GOOD + "m=application 9 UDP/DTLS/SCTP 5000\r\na=mid:2\r\n", "data channels"),
        (HEAD, "no media sections"),
        (HEAD + AUDIO.replace(TRANSPORT, ""), "has no fingerprint"),
        (GOOD.replace("a=ice-pwd:0123456789abcdef012345", "a=ice-pwd:"), "empty ice-pwd"),
        (GOOD.replace("sha-256 AB:", "sha-256 ZZ:"), "malformed fingerprint"),
    ],
)
def test_refuses(sdp: object, reason: str) -> None:
    with pytest.raises(InvalidSdp, match=reason):
        check_answer(sdp)


def test_transport_attributes_may_be_given_once_for_the_session() -> None:
    sdp = HEAD + TRANSPORT + AUDIO.replace(TRANSPORT, "") + VIDEO.replace(TRANSPORT, "")
    assert len(check_answer(sdp)) == 2


def test_limits_media_sections() -> None:
    with pytest.raises(InvalidSdp, match="more than 1 media"):
        check_answer(GOOD, max_media_sections=1)
    with pytest.raises(InvalidSdp, match="the offer had 4"):
        check_answer(GOOD, expected_media_sections=4)
