"""The hub service's per-user rate limit: the token bucket with a fake clock, and the 429 a
handler of the service answers past it (a tornado app of its own, no hub)."""

import json

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from factoryhub.service.app import LIMITER, RateLimited
from factoryhub.service.rate_limit import RateLimiter, retry_after
from factoryhub.site import LimitSettings, SiteError, parse_site


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_a_token_comes_back():
    clock = FakeClock()
    limiter = RateLimiter(burst=3, per_minute=6, clock=clock)  # one token per 10 s
    assert [limiter.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("alice") == pytest.approx(10.0)
    clock.now += 4
    assert limiter.take("alice") == pytest.approx(6.0)  # a refusal spends nothing
    clock.now += 6
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") > 0


def test_each_user_has_a_bucket_of_their_own():
    limiter = RateLimiter(burst=2, per_minute=1, clock=FakeClock())
    assert limiter.take("alice") == limiter.take("alice") == 0.0
    assert limiter.take("alice") > 0
    assert limiter.take("bob") == 0.0


def test_a_bucket_never_holds_more_than_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(burst=2, per_minute=60, clock=clock)
    limiter.take("alice")
    clock.now += 3600  # an hour idle refills to the burst, not to 3,600
    assert [limiter.take("alice") > 0 for _ in range(3)] == [False, False, True]


def test_zero_per_minute_turns_the_limit_off():
    limiter = RateLimiter(burst=1, per_minute=0, clock=FakeClock())
    assert all(limiter.take("alice") == 0.0 for _ in range(100))


def test_idle_users_are_forgotten_once_there_are_many():
    clock = FakeClock()
    limiter = RateLimiter(burst=1, per_minute=60, clock=clock)
    for i in range(1001):
        limiter.take(f"user{i}")
    clock.now += 2  # every bucket is full again
    limiter.take("newcomer")
    assert len(limiter._buckets) == 1
    assert limiter.take("newcomer") > 0  # the newcomer's own spending is kept


def test_retry_after_is_whole_seconds_at_least_one():
    assert [retry_after(s) for s in (0.01, 1.0, 1.2, 29.5)] == [1, 1, 2, 30]


def test_site_toml_sets_the_limit(demo_site):
    assert demo_site.limits.service_burst > 1 and demo_site.limits.service_per_minute > 0
    site = parse_site(
        "[limits]\nservice_burst = 5\nservice_per_minute = 0\n"
        '[partitions.cpu]\n[environments.default]\nlabel = "x"\nprefix = "/x"\n'
    )
    assert (site.limits.service_burst, site.limits.service_per_minute) == (5, 0.0)
    assert site.limits.accounting_refresh_seconds == 60.0  # the default


def test_site_toml_sets_how_long_an_accounting_reading_serves():
    body = '[partitions.cpu]\n[environments.default]\nlabel = "x"\nprefix = "/x"\n'
    assert parse_site(f"[limits]\naccounting_refresh_seconds = 5\n{body}").limits == (
        LimitSettings(accounting_refresh_seconds=5.0)
    )
    with pytest.raises(SiteError, match="accounting_refresh_seconds must be at least 1"):
        parse_site(f"[limits]\naccounting_refresh_seconds = 0\n{body}")


class _Whoever(RateLimited, web.RequestHandler):
    """A service handler whose caller is named by ?user= (the hub's OAuth is not under test)."""

    def get_current_user(self):
        name = self.get_argument("user", "")
        return {"name": name} if name else None

    def get(self) -> None:
        self.finish({"ok": True})


class _Page(_Whoever):
    limit_reply = "html"


@pytest.fixture
async def service():
    clock = FakeClock()
    app = web.Application(
        [("/estimate", _Whoever), ("/catalogue", _Page)],
        **{LIMITER: RateLimiter(burst=2, per_minute=12, clock=clock)},
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}", clock
    server.stop()


async def _get(url: str):
    return await AsyncHTTPClient().fetch(url, raise_error=False)


async def test_the_service_answers_429_with_retry_after_past_the_limit(service):
    base, clock = service
    codes = [(await _get(f"{base}/estimate?user=alice")).code for _ in range(2)]
    assert codes == [200, 200]
    refused = await _get(f"{base}/estimate?user=alice")
    assert refused.code == 429 and refused.headers["Retry-After"] == "5"
    assert "try again" in json.loads(refused.body)["message"]
    assert (await _get(f"{base}/estimate?user=bob")).code == 200  # others are not held back
    clock.now += 5
    assert (await _get(f"{base}/estimate?user=alice")).code == 200


async def test_the_catalogue_shares_the_bucket_and_answers_a_page(service):
    base, _ = service
    for _ in range(2):
        await _get(f"{base}/estimate?user=carol")
    page = await _get(f"{base}/catalogue?user=carol")
    assert page.code == 429 and page.headers["Content-Type"].startswith("text/html")
    assert b"Too many requests" in page.body and page.headers["Retry-After"]


async def test_anonymous_requests_are_left_to_the_login_check(service):
    base, _ = service
    assert all([(await _get(f"{base}/estimate")).code == 200 for _ in range(5)])
