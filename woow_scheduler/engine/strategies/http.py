"""``http``: one HTTP request with httpx; a status outside ``accepted_status`` fails the step.

Any user may call public addresses.  Every connection goes through the SSRF guard
(:mod:`..netguard`): non-public destinations, ``follow_redirects`` and ``verify_tls: false`` need
the ``http_private`` privilege (or, for destinations, an operator's allow-list).  The response body
is streamed and at most ``WOOW_HTTP_BODY_CAP`` bytes are read; credentials inside the URL are
refused (send them in a header, whose value is redacted).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from ...errors import StepFailed
from ...permissions import HTTP_PRIVATE
from ..base import StepContext, StrategyConfig, TaskStrategy
from ..netguard import DestinationRefused, Destinations, GuardedTransport

BODY_CAP = 8 * 1024  # default bytes of response body read (WOOW_HTTP_BODY_CAP)


class HttpConfig(StrategyConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1, max_length=4000)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, description="JSON request body")
    timeout: float = Field(default=30.0, gt=0, le=3600)
    accepted_status: list[int] = Field(
        default_factory=list, description="status codes that count as success; empty = any 2xx"
    )
    follow_redirects: bool = False
    verify_tls: bool = True

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parsed = httpx.URL(value)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ValueError(f"'{value}' is not a valid URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"'{value}' must be an absolute http:// or https:// URL")
        if parsed.userinfo:
            shown = str(parsed.copy_with(username=None, password=None))
            raise ValueError(f"'{shown}': credentials in the URL are not allowed; send them in a header")
        return value

    @field_validator("accepted_status")
    @classmethod
    def _codes(cls, value: list[int]) -> list[int]:
        bad = [c for c in value if not 100 <= c <= 599]
        if bad:
            raise ValueError(f"status code {bad[0]} out of range 100-599")
        return value


def _destinations(settings: Any, *, any_address: bool) -> Destinations:
    return Destinations.build(settings.http_allowed_hosts, settings.http_allowed_networks, any_address=any_address)


class HttpStrategy(TaskStrategy):
    name = "http"
    Config = HttpConfig
    description = "Send an HTTP request; output is the status and a capped body."
    uses_privileges = True

    def required_privileges(self, config: Any) -> frozenset[str]:
        cfg: HttpConfig = config
        host = httpx.URL(cfg.url).host
        unsafe = (cfg.follow_redirects and not self.settings.http_allow_redirects) or not cfg.verify_tls
        if unsafe or _destinations(self.settings, any_address=False).check_literal(host):
            return frozenset({HTTP_PRIVATE})
        return frozenset()

    def privilege_reason(self, config: Any, privilege: str) -> str:
        cfg: HttpConfig = config
        if cfg.follow_redirects and not self.settings.http_allow_redirects:
            return "follow_redirects is true"
        if not cfg.verify_tls:
            return "verify_tls is false"
        reason = _destinations(self.settings, any_address=False).check_literal(httpx.URL(cfg.url).host)
        return f"url: {reason}" if reason else "url is not public"

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: HttpConfig = config
        cap = self.settings.http_body_cap
        destinations = _destinations(self.settings, any_address=HTTP_PRIVATE in ctx.privileges)
        transport = GuardedTransport(destinations, verify=cfg.verify_tls)
        with httpx.Client(
            transport=transport,
            timeout=cfg.timeout,
            follow_redirects=cfg.follow_redirects,
            max_redirects=self.settings.http_max_redirects,
            trust_env=False,
        ) as client:
            try:
                with client.stream(
                    cfg.method,
                    cfg.url,
                    # no compressed bodies: the cap counts the bytes that arrive
                    headers={"accept-encoding": "identity", **cfg.headers},
                    json=cfg.body if cfg.body is not None else None,
                ) as response:
                    raw = bytearray()
                    truncated = False
                    for chunk in response.iter_bytes():
                        raw.extend(chunk)
                        if len(raw) > cap:
                            truncated = True
                            del raw[cap:]
                            break
            except DestinationRefused as exc:
                raise StepFailed(f"{cfg.method} {cfg.url}: refused: {exc} (needs the http_private privilege)") from None
            except httpx.TimeoutException as exc:
                raise StepFailed(f"{cfg.method} {cfg.url}: timed out after {cfg.timeout:g}s ({exc})") from None
            except httpx.HTTPError as exc:
                raise StepFailed(f"{cfg.method} {cfg.url}: {type(exc).__name__}: {exc}") from None
        try:
            text = bytes(raw).decode(response.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = bytes(raw).decode("utf-8", errors="replace")
        body: Any = text
        if not truncated and "json" in response.headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        output = {"status": response.status_code, "body": body, "truncated": truncated}
        ok = response.status_code in cfg.accepted_status if cfg.accepted_status else 200 <= response.status_code < 300
        if not ok:
            raise StepFailed(f"{cfg.method} {cfg.url}: HTTP {response.status_code} is not accepted", output=output)
        return output
