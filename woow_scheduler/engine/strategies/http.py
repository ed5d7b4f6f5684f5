"""``http``: one HTTP request with httpx; a status outside ``accepted_status`` fails the step."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from ...errors import StepFailed
from ..base import StepContext, StrategyConfig, TaskStrategy

BODY_CAP = 8 * 1024  # characters of response body kept in the output


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
        return value

    @field_validator("accepted_status")
    @classmethod
    def _codes(cls, value: list[int]) -> list[int]:
        bad = [c for c in value if not 100 <= c <= 599]
        if bad:
            raise ValueError(f"status code {bad[0]} out of range 100-599")
        return value


class HttpStrategy(TaskStrategy):
    name = "http"
    Config = HttpConfig
    description = "Send an HTTP request; output is the status and a capped body."

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: HttpConfig = config
        with httpx.Client(timeout=cfg.timeout, follow_redirects=cfg.follow_redirects, verify=cfg.verify_tls) as client:
            try:
                response = client.request(
                    cfg.method,
                    cfg.url,
                    headers=cfg.headers,
                    json=cfg.body if cfg.body is not None else None,
                )
            except httpx.TimeoutException as exc:
                raise StepFailed(f"{cfg.method} {cfg.url}: timed out after {cfg.timeout:g}s ({exc})") from None
            except httpx.HTTPError as exc:
                raise StepFailed(f"{cfg.method} {cfg.url}: {type(exc).__name__}: {exc}") from None
        text = response.text
        truncated = len(text) > BODY_CAP
        body: Any = text[:BODY_CAP]
        if not truncated and "json" in response.headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        output = {"status": response.status_code, "body": body, "truncated": truncated}
        ok = response.status_code in cfg.accepted_status if cfg.accepted_status else 200 <= response.status_code < 300
        if not ok:
            raise StepFailed(f"{cfg.method} {cfg.url}: HTTP {response.status_code} is not accepted", output=output)
        return output
