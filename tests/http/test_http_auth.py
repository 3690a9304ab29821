"""API keys on a real uvicorn: 401 without a valid key, 403 without the scope, admin may do
everything; only a hash is stored; the per-key rate limit answers 429 with Retry-After."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from engine_api import Api, served
from sqlalchemy import select

from core.http.auth import revoke_key
from core.http.limits import InProcessRateLimiter, gcra_step
from core.http.tables import api_keys

# Every endpoint of this part of the API, with a body it accepts, and who may call it.
ENDPOINTS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("POST", "/v1/events", {"json": []}, {"events"}),
    ("GET", "/v1/members/m-nobody", {}, {"checkout"}),
]
SCOPES = ("events", "checkout", "admin")


@pytest.fixture
def api(db_url: str, engine: object, examples: Path, tmp_path: Path) -> Any:
    with served(db_url, examples, tmp_path) as api:
        yield api


def key_id_of(key: str) -> str:
    return key.split("_")[1]


@pytest.mark.parametrize(("method", "path", "body", "scopes"), ENDPOINTS)
def test_no_key_is_a_401_with_a_challenge(
    api: Api, method: str, path: str, body: dict[str, Any], scopes: set[str]
) -> None:
    answer = api.call(method, path, scope=None, **body)

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == 'Bearer realm="loyalty-engine"'
    assert answer.json()["code"] == "unauthenticated"
    assert "Authorization: Bearer" in answer.json()["detail"]


@pytest.mark.parametrize("key", ["le_0000_nope", "not-a-key", "Bearer", "le__"])
@pytest.mark.parametrize(("method", "path", "body", "scopes"), ENDPOINTS)
def test_an_unknown_key_is_a_401_invalid_token(
    api: Api, method: str, path: str, body: dict[str, Any], scopes: set[str], key: str
) -> None:
    answer = api.call(method, path, scope=None, headers={"Authorization": f"Bearer {key}"}, **body)

    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_a_key_with_the_right_id_and_a_wrong_secret_is_unknown(api: Api) -> None:
    forged = api.keys["admin"][:-4] + "AAAA"

    answer = api.get("/v1/members/m-x", scope=None, headers={"X-API-Key": forged})

    assert answer.status_code == 401


@pytest.mark.parametrize(("method", "path", "body", "scopes"), ENDPOINTS)
def test_a_revoked_key_is_a_401(
    api: Api, method: str, path: str, body: dict[str, Any], scopes: set[str]
) -> None:
    scope = next(iter(scopes))
    revoke_key(api.runtime.engine, key_id_of(api.keys[scope]))

    answer = api.call(method, path, scope=scope, **body)

    assert answer.status_code == 401
    assert "revoked" in answer.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body", "scopes"), ENDPOINTS)
@pytest.mark.parametrize("scope", SCOPES)
def test_a_key_without_the_scope_is_a_403_and_admin_may_do_everything(
    api: Api, method: str, path: str, body: dict[str, Any], scopes: set[str], scope: str
) -> None:
    answer = api.call(method, path, scope=scope, **body)

    if scope in scopes or scope == "admin":
        assert answer.status_code not in (401, 403), answer.text
    else:
        assert answer.status_code == 403
        assert answer.json()["code"] == "forbidden"
        assert scope in answer.json()["detail"]


def test_x_api_key_is_taken_like_a_bearer_key(api: Api) -> None:
    answer = api.get("/v1/members/m-x", scope=None, headers={"X-API-Key": api.keys["checkout"]})

    assert answer.status_code == 404  # authenticated; the member does not exist


def test_only_a_hash_of_the_secret_is_stored(api: Api) -> None:
    key = api.keys["events"]
    with api.runtime.engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id_of(key))).one()

    secret = key.split("_", 2)[2]
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(tuple(row))


def test_a_used_key_notes_when(api: Api) -> None:
    api.get("/v1/members/m-x", scope="checkout")

    with api.runtime.engine.connect() as conn:
        used = conn.execute(
            select(api_keys.c.last_used_at).where(
                api_keys.c.key_id == key_id_of(api.keys["checkout"])
            )
        ).scalar()
    assert used is not None


def test_over_the_rate_limit_is_a_429_with_retry_after_for_that_key_only(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    with served(db_url, examples, tmp_path, api_rate_limit=3) as api:
        allowed = [api.get("/v1/members/m-x", scope="checkout").status_code for _ in range(3)]
        refused = api.get("/v1/members/m-x", scope="checkout")
        other = api.get("/v1/members/m-x", scope="admin")
        livez = api.get("/livez", scope="checkout")

    assert allowed == [404, 404, 404]
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 20  # one request every 60 / 3 s
    assert (other.status_code, livez.status_code) == (404, 200)


def test_the_rate_limit_is_shared_through_redis(
    db_url: str, engine: object, examples: Path, tmp_path: Path, redis_url: str
) -> None:
    with served(db_url, examples, tmp_path, api_rate_limit=2, redis_url=redis_url) as api:
        first = [api.get("/v1/members/m-x", scope="checkout").status_code for _ in range(3)]
    with served(db_url, examples, tmp_path, api_rate_limit=2, redis_url=redis_url) as again:
        again_keys = api.keys["checkout"]
        second = again.get("/v1/members/m-x", headers={"Authorization": f"Bearer {again_keys}"})

    assert first == [404, 404, 429]
    assert second.status_code == 429  # another server, the same bucket
    assert int(second.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("tat", "now", "limit", "allowed", "retry_after", "new_tat"),
    [
        (None, 100.0, 60, True, 0, 101.0),  # a fresh bucket: one request uses one second
        (150.0, 100.0, 60, True, 0, 151.0),  # 50 s used of the 60 s window
        (160.0, 100.0, 60, False, 1, 160.0),  # the window is full: the next goes in 1 s
        (90.0, 100.0, 60, True, 0, 101.0),  # an idle bucket is full again, never more
        (160.0, 100.0, 2, False, 30, 160.0),  # 2 a minute: one every 30 s
    ],
)
def test_the_gcra_step(
    tat: float | None,
    now: float,
    limit: int,
    allowed: bool,
    retry_after: int,
    new_tat: float,
) -> None:
    step = gcra_step(tat, now=now, limit=limit)

    assert (step.verdict.allowed, step.verdict.retry_after, step.tat) == (
        allowed,
        retry_after,
        new_tat,
    )


def test_a_minute_s_allowance_goes_at_once_then_one_per_interval() -> None:
    clock = [0.0]
    limiter = InProcessRateLimiter(6, clock=lambda: clock[0])

    burst = [limiter.hit("k").allowed for _ in range(7)]
    clock[0] = 10.0
    after_interval = [limiter.hit("k").allowed for _ in range(2)]

    assert burst == [True] * 6 + [False]
    assert after_interval == [True, False]
