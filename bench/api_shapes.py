"""The API's request path with each candidate schema library: decode + validate a
tracked-send create body, and encode a timeline page of 50 email summaries.

`python -m bench.api_shapes` (not in `make bench`: it picks a library, it does not
watch a figure). In-process, one thread; the baseline is the hand-written path the API
had before (``json.loads`` + checks by hand; dicts + ``json.dumps`` as Starlette's
``JSONResponse`` does). Best of 7 runs of N calls each, in microseconds per call.
The candidates that lost are not dependencies: `.venv/bin/pip install pydantic cattrs`
first.
"""

from __future__ import annotations

import json
import sys
import timeit
from importlib import metadata
from typing import Annotated, Any

import attrs
import cattrs
import msgspec
import pydantic

N = 2000

TRACKED_SEND = json.dumps({
    "to": ["dana@acme.example", "pat@gmail.com", "Sam Doe <sam@acme.example>"],
    "cc": ["boss@acme.example"], "bcc": [],
    "subject": "Our offer for the Q3 renewal",
    "html": "<p>Hello Dana,</p>" + '<p>See <a href="https://ourco.example/p/1">it</a>.</p>' * 60,
    "track_opens": True, "track_clicks": True, "log": True,
}).encode()


def _summary(i: int) -> dict[str, Any]:
    return {
        "id": i, "message_id": f"{i}.abc@mail.ourco.example", "thread_id": i // 3 + 1,
        "direction": "outgoing", "sources": ["bcc"],
        "from": {"email": "rita@ourco.example", "name": "Rita Rep"},
        "to": [{"email": "dana@acme.example", "name": "Dana Buyer"}],
        "cc": [{"email": "sam@acme.example", "name": ""}], "subject": f"Offer {i}",
        "sent_at": "2024-06-04T08:00:00Z", "snippet": "Hello Dana, here is our offer " * 6,
        "contact_ids": [1, 2], "attachment_count": 1,
        "tracking": {"opens": 2, "clicks": 1, "machine_opens": 1, "machine_clicks": 0},
        "auth": None,
    }


PAGE = {"items": [_summary(i) for i in range(1, 51)]}


# --- baseline: the hand-written path --------------------------------------------------
def baseline_decode(body: bytes) -> dict[str, Any]:
    value = json.loads(body)
    assert isinstance(value, dict)
    for field in ("to", "cc", "bcc"):
        items = value.get(field, [])
        assert isinstance(items, list) and all(isinstance(a, str) for a in items)
    assert isinstance(value.get("subject", ""), str) and isinstance(value.get("html", ""), str)
    for flag in ("track_opens", "track_clicks", "log"):
        assert isinstance(value.get(flag, True), bool)
    return value


def baseline_encode(page: dict[str, Any]) -> bytes:
    return json.dumps(page, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode()


# --- msgspec ---------------------------------------------------------------------------
class MsTrackedSend(msgspec.Struct, forbid_unknown_fields=True):
    to: Annotated[list[str], msgspec.Meta(min_length=1, max_length=500)]
    cc: Annotated[list[str], msgspec.Meta(max_length=500)] = []
    bcc: Annotated[list[str], msgspec.Meta(max_length=500)] = []
    subject: Annotated[str, msgspec.Meta(max_length=998)] = ""
    html: str = ""
    track_opens: bool = True
    track_clicks: bool = True
    log: bool = True


class MsPerson(msgspec.Struct):
    email: str
    name: str


class MsTracking(msgspec.Struct):
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


class MsSummary(msgspec.Struct, rename={"from_": "from"}):
    id: int
    message_id: str
    thread_id: int
    direction: str
    sources: list[str]
    from_: MsPerson
    to: list[MsPerson]
    cc: list[MsPerson]
    subject: str
    sent_at: str
    snippet: str
    contact_ids: list[int]
    attachment_count: int
    tracking: MsTracking
    auth: dict[str, Any] | None


class MsPage(msgspec.Struct):
    items: list[MsSummary]


MS_DECODER = msgspec.json.Decoder(MsTrackedSend)
MS_ENCODER = msgspec.json.Encoder()


# --- pydantic v2 -------------------------------------------------------------------------
class PdTrackedSend(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    to: Annotated[list[str], pydantic.Field(min_length=1, max_length=500)]
    cc: Annotated[list[str], pydantic.Field(max_length=500)] = []
    bcc: Annotated[list[str], pydantic.Field(max_length=500)] = []
    subject: Annotated[str, pydantic.Field(max_length=998)] = ""
    html: str = ""
    track_opens: bool = True
    track_clicks: bool = True
    log: bool = True


class PdPerson(pydantic.BaseModel):
    email: str
    name: str


class PdTracking(pydantic.BaseModel):
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


class PdSummary(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(populate_by_name=True)
    id: int
    message_id: str
    thread_id: int
    direction: str
    sources: list[str]
    from_: PdPerson = pydantic.Field(alias="from")
    to: list[PdPerson]
    cc: list[PdPerson]
    subject: str
    sent_at: str
    snippet: str
    contact_ids: list[int]
    attachment_count: int
    tracking: PdTracking
    auth: dict[str, Any] | None


class PdPage(pydantic.BaseModel):
    items: list[PdSummary]


# --- attrs + cattrs ----------------------------------------------------------------------
@attrs.frozen
class AtTrackedSend:
    to: list[str] = attrs.field(validator=attrs.validators.and_(
        attrs.validators.min_len(1), attrs.validators.max_len(500)))
    cc: list[str] = attrs.field(factory=list, validator=attrs.validators.max_len(500))
    bcc: list[str] = attrs.field(factory=list, validator=attrs.validators.max_len(500))
    subject: str = attrs.field(default="", validator=attrs.validators.max_len(998))
    html: str = ""
    track_opens: bool = True
    track_clicks: bool = True
    log: bool = True


@attrs.frozen
class AtPerson:
    email: str
    name: str


@attrs.frozen
class AtTracking:
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


@attrs.frozen
class AtSummary:
    id: int
    message_id: str
    thread_id: int
    direction: str
    sources: list[str]
    from_: AtPerson
    to: list[AtPerson]
    cc: list[AtPerson]
    subject: str
    sent_at: str
    snippet: str
    contact_ids: list[int]
    attachment_count: int
    tracking: AtTracking
    auth: dict[str, Any] | None


@attrs.frozen
class AtPage:
    items: list[AtSummary]


CONVERTER = cattrs.Converter(forbid_extra_keys=True)
_unstructure_summary = cattrs.gen.make_dict_unstructure_fn(
    AtSummary, CONVERTER, from_=cattrs.gen.override(rename="from"))
CONVERTER.register_unstructure_hook(AtSummary, _unstructure_summary)
CONVERTER.register_structure_hook(AtSummary, cattrs.gen.make_dict_structure_fn(
    AtSummary, CONVERTER, from_=cattrs.gen.override(rename="from")))


def _best(fn: Any) -> float:
    return min(timeit.repeat(fn, number=N, repeat=7)) / N * 1e6


def main() -> None:
    ms_page = msgspec.convert(PAGE, MsPage)
    pd_page = PdPage.model_validate(PAGE)
    at_page = CONVERTER.structure(PAGE, AtPage)
    # Every library reads the body and writes the page the same as the baseline does.
    assert msgspec.structs.asdict(MS_DECODER.decode(TRACKED_SEND)) == {
        "cc": [], "bcc": [], **baseline_decode(TRACKED_SEND)} | {
        k: v for k, v in json.loads(TRACKED_SEND).items()}
    for encoded in (MS_ENCODER.encode(ms_page), pd_page.model_dump_json(by_alias=True).encode(),
                    baseline_encode(CONVERTER.unstructure(at_page))):
        assert json.loads(encoded) == PAGE
    rows = [
        ("baseline: json + hand checks", _best(lambda: baseline_decode(TRACKED_SEND)),
         _best(lambda: baseline_encode(PAGE))),
        ("msgspec Struct", _best(lambda: MS_DECODER.decode(TRACKED_SEND)),
         _best(lambda: MS_ENCODER.encode(ms_page))),
        ("msgspec (json.loads, then convert)",
         _best(lambda: msgspec.convert(json.loads(TRACKED_SEND), MsTrackedSend)),
         _best(lambda: MS_ENCODER.encode(ms_page))),
        ("pydantic v2 BaseModel",
         _best(lambda: PdTrackedSend.model_validate_json(TRACKED_SEND)),
         _best(lambda: pd_page.model_dump_json(by_alias=True))),
        ("attrs + cattrs (json module)",
         _best(lambda: CONVERTER.structure(json.loads(TRACKED_SEND), AtTrackedSend)),
         _best(lambda: baseline_encode(CONVERTER.unstructure(at_page)))),
    ]
    print(f"python {sys.version.split()[0]}, msgspec {msgspec.__version__}, "
          f"pydantic {pydantic.VERSION}, cattrs {metadata.version('cattrs')}")
    print(f"tracked-send body {len(TRACKED_SEND)} B; timeline page "
          f"{len(baseline_encode(PAGE))} B (50 summaries)")
    print("| library | decode+validate tracked send, µs | encode timeline page, µs |")
    print("|---|---|---|")
    for name, decode, encode in rows:
        print(f"| {name} | {decode:.1f} | {encode:.1f} |")


if __name__ == "__main__":
    main()
