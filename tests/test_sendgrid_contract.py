"""SendGrid's documented answers to ``POST /v3/mail/send``, checked on the pure contract (no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from dripengine.testing import sendgrid_contract as contract
from dripengine.testing.sendgrid_contract import (
    ERRORS_URL,
    MAX_BODY_BYTES,
    RESERVED_HEADERS,
    Answer,
    check_payload,
    validate,
)

NOW = 1_800_000_000.0
KEY = "SG.contract-key.0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"email": "news@acme.example", "name": "Acme"},
        "subject": "Hello",
        "personalizations": [{"to": [{"email": "lead@example.com", "name": "Lead"}]}],
        "content": [
            {"type": "text/plain", "value": "Hi"},
            {"type": "text/html", "value": "<p>Hi</p>"},
        ],
        "custom_args": {"drip_uid": "m-1"},
    }
    body.update(changes)
    return body


def post(
    body: Any = None,
    *,
    raw: bytes | None = None,
    path: str = "/v3/mail/send",
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Answer:
    data = raw if raw is not None else json.dumps(body).encode()
    return validate(method, path, AUTH if headers is None else headers, data, api_key=KEY, now=NOW)


def errors_of(body: Any) -> list[dict[str, Any]]:
    answer = post(body)
    assert answer.status == 400, answer
    assert answer.headers["Content-Type"] == "application/json"
    errors = answer.errors()
    assert errors and all(set(e) == {"message", "field", "help"} for e in errors)
    return errors


def test_a_valid_request_is_202_with_a_message_id_and_no_body() -> None:
    answer = post(payload())
    assert answer.status == 202 and answer.body == b"" and not answer.close
    assert answer.message_id is not None and len(answer.message_id) == 22
    assert dict(answer.headers) == {"X-Message-Id": answer.message_id}
    assert answer.payload == payload()  # what a server records
    assert post(payload()).message_id != answer.message_id


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer SG.wrong"}, {"Authorization": KEY}]
)
def test_a_missing_or_wrong_key_is_a_401_in_sendgrids_shape(headers: dict[str, str]) -> None:
    answer = post(payload(), headers=headers)
    assert answer.status == 401 and answer.payload is None
    assert answer.errors() == [{"message": contract.UNAUTHORIZED, "field": None, "help": None}]


def test_the_authorization_header_is_found_in_any_case() -> None:
    assert post(payload(), headers={"authorization": f"Bearer {KEY}"}).status == 202
    assert post(payload(), headers={"AUTHORIZATION": f" Bearer {KEY} "}).status == 202


def test_the_key_is_checked_before_the_body() -> None:
    assert post(raw=b"{not json", headers={}).status == 401


def test_an_unknown_path_is_404_and_a_query_string_is_ignored() -> None:
    assert post(payload(), path="/v3/mail/sendx").status == 404
    assert post(payload(), path="/v3/mail/send?x=1").status == 202


@pytest.mark.parametrize("method", sorted(contract.NOT_ALLOWED))
def test_other_methods_are_405_and_keep_the_connection(method: str) -> None:
    answer = post(payload(), method=method)
    assert answer.status == 405 and not answer.close
    assert answer.errors()[0]["message"] == "Method Not Allowed"


def test_methods_it_does_not_implement_are_501_and_close() -> None:
    options = post(payload(), method="OPTIONS")
    assert options.status == 501 and options.close
    assert options.errors()[0]["message"] == "Not Implemented"
    head = post(payload(), method="HEAD")
    assert head.status == 501 and head.close and head.body == b""  # an answer to HEAD has none


def test_a_body_past_30_mb_is_a_413_that_closes() -> None:
    for body in (None, b" " * (MAX_BODY_BYTES + 1)):  # None: the server stopped keeping it
        answer = validate("POST", "/v3/mail/send", AUTH, body, api_key=KEY, now=NOW)
        assert answer.status == 413 and answer.close
        assert answer.errors()[0]["message"] == "Payload Too Large"


VALID = json.dumps(payload()).encode()


@pytest.mark.parametrize(
    "raw",
    [  # what Python's json.loads took: the payload is valid but for a field nothing checks
        VALID[:-1] + b', "batch_id": NaN}',
        VALID[:-1] + b', "batch_id": -Infinity}',
        VALID[:-1] + b', "batch_id": "\\ud800"}',  # a lone surrogate is no Unicode text
        b"[" * 5000 + b"]" * 5000,  # json.loads raised RecursionError
        VALID[:-1] + b', "batch_id": "\xff"}',  # not UTF-8
        b"{not json",
        b"",
    ],
)
def test_what_is_not_json_is_a_400_bad_request(raw: bytes) -> None:
    answer = post(raw=raw)
    assert answer.status == 400 and not answer.close
    assert orjson.loads(answer.body) == {
        "errors": [{"message": "Bad Request", "field": None, "help": None}]
    }


@pytest.mark.parametrize("body", [[], "text", 1, None])
def test_json_that_is_not_an_object_is_a_400(body: Any) -> None:
    assert errors_of(body) == [{"message": "Bad Request", "field": None, "help": None}]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"personalizations": []}, "personalizations", "at least one personalization"),
        (
            {"personalizations": [{"to": [{"email": f"l{i}@example.com"}]} for i in range(1001)]},
            "personalizations",
            "limited to 1000 personalizations",
        ),
        (
            {"personalizations": [{"cc": [{"email": "a@example.com"}]}]},
            "personalizations.0.to",
            "to array is required",
        ),
        (
            {"personalizations": [{"to": [{"email": "not-an-address"}]}]},
            "personalizations.0.to.0.email",
            "valid address",
        ),
        (
            {
                "personalizations": [
                    {"to": [{"email": "a@example.com"}], "bcc": [{"email": "A@example.com"}]}
                ]
            },
            "personalizations.0.bcc.0.email",
            "only be included once",
        ),
        (
            {"personalizations": [{"to": [{"email": "a@example.com", "name": "Doe, Jane"}]}]},
            "personalizations.0.to.0.name",
            "; or ,",
        ),
        ({"from": {"name": "Acme"}}, "from.email", "from object must be provided"),
        ({"from": {"email": "acme"}}, "from.email", "valid address"),
        ({"subject": ""}, "subject", "subject is required"),
        ({"content": []}, "content", "content parameter is required"),
        (
            {"content": [{"type": "text/plain", "value": ""}]},
            "content.0.value",
            "at least one character",
        ),
        (
            {
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ]
            },
            "content",
            "text/plain, text/html",
        ),
        ({"custom_args": {"n": 1}}, "custom_args.n", "Expected: string"),
        ({"categories": [f"c{i}" for i in range(11)]}, "categories", "more than 10 categories"),
        ({"categories": ["x" * 256]}, "categories.0", "more than 255 characters"),
        ({"send_at": int(NOW) + 72 * 3600 + 1}, "send_at", "72 hours"),
        (
            {"reply_to": {"email": "a@acme.example"}, "reply_to_list": []},
            "reply_to",
            "mutually exclusive",
        ),
    ],
)
def test_each_documented_rule_is_a_400_naming_the_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    errors = errors_of(payload(**changes))
    [error] = [e for e in errors if e["field"] == field and words in e["message"]]
    assert error["help"] == f"{ERRORS_URL}#{field.split('.')[0]}"


def test_more_than_1000_recipients_in_total_is_a_400() -> None:
    people = [{"email": f"l{i}@example.com"} for i in range(1001)]
    body = payload(personalizations=[{"to": people[:500]}, {"to": people[500:]}])
    assert any("1000 total recipients" in e["message"] for e in errors_of(body))
    body = payload(personalizations=[{"to": people[:500]}, {"to": people[500:1000]}])
    assert post(body).status == 202


def test_a_subject_in_every_personalization_is_enough() -> None:
    body = payload(personalizations=[{"to": [{"email": "a@example.com"}], "subject": "Hi"}])
    del body["subject"]
    assert post(body).status == 202
    body["personalizations"].append({"to": [{"email": "b@example.com"}]})
    assert any(e["field"] == "subject" for e in errors_of(body))


def test_a_template_id_stands_in_for_subject_and_content() -> None:
    body = payload(template_id="d-123")
    del body["subject"], body["content"]
    assert post(body).status == 202


def test_a_quoted_name_with_a_comma_is_accepted() -> None:
    to = [{"email": "a@example.com", "name": '"Doe, Jane"'}]
    assert post(payload(personalizations=[{"to": to}])).status == 202


def test_custom_args_are_limited_after_merging_top_level_and_personalization() -> None:
    top = {"a": "x" * 5_000}
    own = {"b": "y" * 5_000}
    body = payload(
        custom_args=top, personalizations=[{"to": [{"email": "a@example.com"}], "custom_args": own}]
    )
    errors = errors_of(body)
    assert errors[0]["field"] == "personalizations.0.custom_args"
    assert "10000 bytes" in errors[0]["message"]
    body["personalizations"][0]["custom_args"] = {"b": "y" * 4_000}
    assert post(body).status == 202


@pytest.mark.parametrize("name", [*sorted(RESERVED_HEADERS), "X-SG-ID", "Content-Type"])
def test_reserved_headers_are_refused(name: str) -> None:
    errors = errors_of(payload(headers={name: "x"}))
    assert errors[0]["field"] == f"headers.{name}" and "reserved" in errors[0]["message"]


def test_reserved_headers_are_refused_in_a_personalization_too() -> None:
    body = payload(personalizations=[{"to": [{"email": "a@example.com"}], "headers": {"BCC": "x"}}])
    assert errors_of(body)[0]["field"] == "personalizations.0.headers.BCC"


def test_message_id_and_list_unsubscribe_headers_are_allowed() -> None:
    headers = {
        "Message-ID": "<m-1@acme.example>",
        "List-Unsubscribe": "<https://acme.example/u/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert post(payload(headers=headers)).status == 202


def test_send_at_within_72_hours_is_accepted_and_a_boolean_is_not_a_timestamp() -> None:
    assert post(payload(send_at=int(NOW) + 72 * 3600)).status == 202
    assert errors_of(payload(send_at=True))[0]["field"] == "send_at"


def test_every_broken_rule_is_reported_not_only_the_first() -> None:
    errors = check_payload(payload(subject="", categories=["x" * 256], send_at="soon"), NOW)
    assert [e["field"] for e in errors] == ["subject", "categories.0", "send_at"]


def test_a_rate_limit_answer_carries_sendgrids_headers() -> None:
    answer = contract.rate_limited(retry_after=2.5, limit=100, header=True, now=NOW)
    assert answer.status == 429 and not answer.close
    assert answer.headers["X-RateLimit-Limit"] == "100"
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert answer.headers["X-RateLimit-Reset"] == str(int(NOW) + 3)
    assert answer.headers["Retry-After"] == "3"
    assert answer.errors()[0]["message"]
    quiet = contract.rate_limited(retry_after=5, limit=600, header=False, now=NOW)
    assert "Retry-After" not in quiet.headers and quiet.headers["X-RateLimit-Reset"] == "1800000005"


@pytest.mark.parametrize(
    ("status", "message"), [(500, "Internal Server Error"), (503, "Service Unavailable")]
)
def test_server_errors_use_sendgrids_error_shape(status: int, message: str) -> None:
    answer = contract.server_error(status)
    assert answer.status == status
    assert answer.errors() == [{"message": message, "field": None, "help": None}]
