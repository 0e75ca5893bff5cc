"""CloudEvent validation: every rule of the spec that we enforce, and the SDK conversion."""

import copy
import json
import pickle
import re
from dataclasses import asdict, fields, replace
from datetime import datetime, timedelta, timezone

import pytest
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from django_broadcaster import publishers
from django_broadcaster.events import CloudEvent, format_timestamp
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.formats import to_sdk_event, to_structured_json
from django_broadcaster.publishers import encoded_copy

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
GMT = timezone(timedelta(0), "GMT")  # UTC's offset, not the timezone.utc object


def make(**overrides: object) -> CloudEvent:
    values: dict[str, object] = {"event_type": "order.created", "source": "order-service"}
    values.update(overrides)
    return CloudEvent(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    ["order-service", "/orders", "https://example.com/orders?x=1#f", "urn:uuid:1234", "a%20b"],
)
def test_accepts_uri_references(source: str) -> None:
    assert make(source=source).source == source


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"event_type": ""}, "type must not be empty"),
        ({"event_type": 5}, "type must be a string"),
        ({"event_type": "a\x00b"}, "control characters"),
        ({"source": ""}, "source must not be empty"),
        ({"source": "has space"}, "URI-reference"),
        ({"source": "bad%zz"}, "URI-reference"),
        ({"source": "1abc:def"}, "URI-reference"),
        ({"subject": ""}, "subject must not be empty"),
        ({"dataschema": "relative/path"}, "absolute URI"),
        ({"time": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"extensions": {"Bad": "x"}}, "lowercase letters and digits"),
        ({"extensions": {"a_b": "x"}}, "lowercase letters and digits"),
        ({"extensions": {"x" * 21: "x"}}, "1 to 20"),
        ({"extensions": {"data": "x"}}, "reserved"),
        ({"extensions": {"subject": "x"}}, "reserved"),
        ({"extensions": {"big": 2**31}}, "32-bit"),
        ({"extensions": {"obj": {"a": 1}}}, "string, an integer or a boolean"),
        ({"extensions": {"s": "\x7f"}}, "control characters"),
    ],
)
def test_rejects_what_the_spec_forbids(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        make(**overrides)


def test_is_immutable() -> None:
    event = make(extensions={"tenant": "acme"})
    with pytest.raises(AttributeError):
        event.source = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.extensions["tenant"] = "evil"  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (float("nan"), "NaN or Infinity"),
        ({"x": float("inf")}, "NaN or Infinity"),
        ({"when": NOW}, "JSON-serializable"),
        ({1, 2}, "JSON-serializable"),
        (b"bytes", "JSON-serializable"),
    ],
)
def test_encoded_copy_is_strict_json(data: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        encoded_copy(data)


def test_encoded_copy_shares_no_object_with_the_data() -> None:
    data = {"lines": [{"sku": "A"}], "note": "é"}
    text, copy = encoded_copy(data)
    assert text == '{"lines":[{"sku":"A"}],"note":"\\u00e9"}'
    assert copy == data
    assert copy is not data and copy["lines"] is not data["lines"]


def test_encoded_copy_enforces_the_size_limit() -> None:
    assert encoded_copy({"a": "x" * 10}, max_size=100)[0] == '{"a":"xxxxxxxxxx"}'
    with pytest.raises(InvalidEvent, match="over the limit of 10 bytes"):
        encoded_copy({"a": "x" * 10}, max_size=10)


def test_structured_json_decodes_with_the_sdk() -> None:
    event = make(
        id="1a2b", time=NOW, data={"n": 1}, subject="o-1", extensions={"partitionkey": "k", "n": 3}
    )
    decoded = JSONFormat().read(None, to_structured_json(event))
    assert decoded.get_id() == "1a2b"
    assert decoded.get_type() == "order.created"
    assert decoded.get_source() == "order-service"
    assert decoded.get_subject() == "o-1"
    assert decoded.get_time() == NOW
    assert decoded.get_data() == {"n": 1}
    assert decoded.get_extension("partitionkey") == "k"
    assert decoded.get_specversion() == "1.0"


@pytest.mark.parametrize(
    "overrides",
    [
        {"data": None},
        {"data": "plain text", "datacontenttype": "text/plain"},
        {"data": [1, "ü", None, {"deep": True}], "dataschema": "https://example.com/s"},
        {"data": {"n": 1}, "extensions": {"flag": True, "count": -7, "name": "x"}},
        {"data": {"n": 1}, "time": datetime(2026, 1, 1, tzinfo=timezone.utc)},
    ],
)
def test_structured_json_matches_what_the_sdk_writes(overrides: dict[str, object]) -> None:
    event = make(**{"id": "e-1", "time": NOW, **overrides})
    ours = JSONFormat().read(None, to_structured_json(event))
    sdks = JSONFormat().read(None, JSONFormat().write(to_sdk_event(event)))
    assert ours.get_attributes() == sdks.get_attributes()
    assert ours.get_data() == sdks.get_data()


def test_a_trusted_event_equals_a_validated_one() -> None:
    fields = {"id": "e-1", "time": NOW, "data": {"n": 1}, "extensions": {"partitionkey": "k"}}
    trusted = CloudEvent.trusted(event_type="order.created", source="order-service", **fields)
    assert trusted == make(**fields)
    assert trusted.partition_key == "k"


def test_stored_data_json_is_spliced_in_decoded_when_read_and_dropped_by_replace() -> None:
    stored = '{"b": [1, 2.5], "a": "é"}'
    # with data=None beside the text, as the worker's claim passes it
    event = CloudEvent.trusted(stored, event_type="t", source="s", id="e-1", data=None)
    assert to_structured_json(event).endswith(b',"data":' + stored.encode() + b"}")
    assert "data" not in event.__dict__  # writing did not need the decoded data
    validated = make(event_type="t", source="s", id="e-1", data=json.loads(stored))
    assert json.loads(to_structured_json(event)) == json.loads(to_structured_json(validated))
    assert event.data == {"b": [1, 2.5], "a": "é"} and event == validated
    assert replace(event)._data_json is None and replace(event) == event
    assert "_data_json" not in {f.name for f in fields(CloudEvent)}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        event.nope  # type: ignore[attr-defined]  # noqa: B018


def test_stored_json_null_means_no_data_member() -> None:
    event = CloudEvent.trusted("null", event_type="t", source="s", id="e-1")
    assert "data" not in json.loads(to_structured_json(event))
    assert event.data is None


@pytest.mark.parametrize("build", ["validated", "trusted"])
def test_an_event_pickles_copies_and_converts_to_a_dict(build: str) -> None:
    values = {"id": "e-1", "time": NOW, "data": {"n": 1}, "extensions": {"partitionkey": "k"}}
    event = (
        make(**values)
        if build == "validated"
        else CloudEvent.trusted(event_type="order.created", source="order-service", **values)
    )
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.deepcopy(event) == event
    assert asdict(event)["extensions"] == {"partitionkey": "k"}
    with pytest.raises(TypeError):
        event.extensions["partitionkey"] = "other"  # type: ignore[index]


def test_unpublished_event_cannot_be_converted() -> None:
    with pytest.raises(InvalidEvent, match="no id"):
        to_sdk_event(make())


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-ABC.", min_size=0, max_size=25)


@given(name=names, value=st.one_of(st.text(max_size=5), st.integers(), st.booleans()))
def test_extension_validation_matches_the_spec(name: str, value: object) -> None:
    reserved = {"data", "id", "source", "specversion", "type", "subject", "time"} | {
        "datacontenttype",
        "dataschema",
    }
    name_ok = 1 <= len(name) <= 20 and all(c.isdigit() or "a" <= c <= "z" for c in name)
    value_ok = (
        isinstance(value, bool)
        or (isinstance(value, int) and -(2**31) <= value < 2**31)
        or (
            isinstance(value, str)
            and value != ""
            and not any(
                ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in value
            )
        )
    )
    # expirytime must be an RFC 3339 time, and no value drawn here is one
    expected_ok = name_ok and name not in reserved and value_ok and name != "expirytime"
    try:
        make(extensions={name: value})
    except InvalidEvent:
        assert not expected_ok
    else:
        assert expected_ok


@given(source=st.text(max_size=30))
def test_source_validation_never_crashes(source: str) -> None:
    try:
        event = make(source=source)
    except InvalidEvent:
        return
    assert event.source and " " not in event.source


@pytest.mark.parametrize("data", [{1: "a"}, {"x": (1, 2)}, [(1,)]])
def test_encoded_copy_refuses_data_that_json_would_change(data: object) -> None:
    with pytest.raises(InvalidEvent, match="would change when encoded as JSON"):
        encoded_copy(data)


def test_an_events_extensions_read_like_a_mapping_and_cannot_change() -> None:
    extensions = CloudEvent("t", "/s", extensions={"tenant": "acme", "attempt": 3}).extensions

    assert ("tenant" in extensions, "region" in extensions, 3 in extensions) == (True, False, False)
    assert (extensions.get("tenant"), extensions.get("region"), extensions.get("x", 1)) == (
        "acme",
        None,
        1,
    )
    assert list(extensions.keys()) == ["tenant", "attempt"]
    assert dict(extensions.items()) == {"tenant": "acme", "attempt": 3} == dict(extensions)
    assert not hasattr(extensions, "__setitem__") and not hasattr(extensions.items(), "add")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc), "2026-11-28T12:00:00Z"),
        (datetime(2026, 11, 28, 12, 0, 0, 5, tzinfo=GMT), "2026-11-28T12:00:00.000005Z"),
        (
            datetime(2026, 11, 28, 13, 0, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-28T12:00:00Z",
        ),
        (
            datetime(2026, 11, 28, 17, 30, 7, tzinfo=timezone(timedelta(hours=5, seconds=1807))),
            "2026-11-28T12:00:00Z",
        ),
    ],
)
def test_timestamps_are_written_in_utc_with_a_z(value: datetime, text: str) -> None:
    assert format_timestamp(value) == text


@pytest.mark.parametrize("value", [datetime(2026, 11, 28, 12, 0), "2026-11-28T12:00:00Z"])
def test_a_timestamp_without_a_time_zone_is_refused(value: object) -> None:
    with pytest.raises(InvalidEvent, match="expires_at must be"):
        format_timestamp(value, "expires_at")  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [{"a": 1}, [1], 7, True])
def test_data_that_is_not_text_needs_a_json_content_type(data: object) -> None:
    with pytest.raises(InvalidEvent, match="does not declare JSON, so data must be text"):
        make(data=data, datacontenttype="text/plain")
    for content_type in ("application/json", "text/json; charset=utf-8", "application/x+JSON"):
        assert make(data=data, datacontenttype=content_type).data == data
    for text in ("<order/>", b"\x00\x01", None):
        assert make(data=text, datacontenttype="application/xml").data == text


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_an_expirytime_that_is_no_time_in_utc_is_refused(value: str) -> None:
    with pytest.raises(InvalidEvent, match=f"expirytime '?{re.escape(value)}'?"):
        make(extensions={"expirytime": value})


def test_a_time_that_utc_cannot_hold_is_refused() -> None:
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(InvalidEvent, match="time 9999-12-31T23:00:00-05:00 is not in years 1"):
        make(time=late)
    with pytest.raises(InvalidEvent, match="expires_at 0001-01-01T00:00:00[+]01:00 is not in"):
        format_timestamp(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "expires_at")
    assert format_timestamp(datetime(9999, 12, 31, 23, tzinfo=timezone.utc)).startswith("9999")


def nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "data",
    [
        {"text": "\\u0000 \\\\u0000 \\ud800 \\\\\\udfff"},  # backslashes, then letters
        "\U0001f600 and \U00010000",  # each a pair of escapes in the JSON text
        [[[]]] * 600,  # many brackets, three levels
        {"[" * 600: "{" * 600, "": ['"[\\' * 300]},  # brackets in strings
        nested(500),
    ],
    ids=["escapes-as-text", "pairs", "wide", "brackets-in-strings", "500-deep"],
)
def test_encoded_copy_keeps_what_every_database_stores(data: object) -> None:
    assert encoded_copy(data)[1] == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("\\\x00", r"\\u0000"),  # a backslash, then NUL
        ({"k\x00": 1}, r"\\u0000"),
        ("\\\ud800", r"\\ud800"),  # a backslash, then a lone surrogate
        ("\ud83d\\ude00", r"\\ud83d"),  # a high surrogate, then the text \ude00
        ("\\ud83d\ude00", r"\\ude00"),  # the text \ud83d, then a low surrogate
        ("\ud83d\ud83d\ude00", r"\\ud83d"),  # two high surrogates, one low
        ("\ud83d\\\ude00", r"\\ud83d"),  # a high surrogate, a backslash, a low one
        ("\ud83d\ude00", "would change when encoded as JSON"),  # JSON makes the pair one character
        (nested(501), "nests over 500 levels"),
        ([nested(500), "]]]]" * 200], "nests over 500 levels"),  # closing brackets in a string
        (nested(100_000), "nests"),
    ],
)
def test_encoded_copy_refuses_what_a_database_refuses(data: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        encoded_copy(data)


# What the check reads in the JSON text: backslash runs, escapes' letters, pairs and halves.
TRICKY = '\\u0d"\x00\ud83d\ude00\U0001f600'


@settings(max_examples=500)
@given(text=st.text(st.sampled_from(TRICKY), max_size=12))
def test_encoded_copy_refuses_text_exactly_when_it_holds_nul_or_a_surrogate(text: str) -> None:
    unstorable = any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in text)
    for data in (text, {text: [text]}):
        try:
            encoded_copy(data)
        except InvalidEvent:
            assert unstorable
        else:
            assert not unstorable


def depth(data: object) -> int:
    if isinstance(data, dict):
        return 1 + max(map(depth, data.values()), default=0)
    if isinstance(data, list):
        return 1 + max(map(depth, data), default=0)
    return 0


JSON_TREES = st.recursive(
    st.text('[]{}"\\a', max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text('[]{}"\\a', max_size=3), children, max_size=3)
    ),
)


@given(data=JSON_TREES)
def test_encoded_copy_refuses_data_exactly_when_it_nests_too_deeply(data: object) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(publishers, "MAX_DATA_DEPTH", 2)  # small, so that brackets are counted
        try:
            encoded_copy(data)
        except InvalidEvent:
            assert depth(data) > 2
        else:
            assert depth(data) <= 2
