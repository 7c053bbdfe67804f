"""A notification sink: saving a list of JSON messages POSTs them to a webhook URL.

Messages are sent in batches (``{"alerts": [...]}`` per request), each retried a few
times on a connection error or a 5xx answer; a batch still refused fails the save
with the URL's status, so no alert is dropped silently. Without a URL the save logs
that the messages were not sent (they stay in the alerts table).

Example:
    ```yaml
    reporting_alert_webhook:
      type: disease_pipeline.datasets.webhook.WebhookDataset
      url: ${runtime_params:screen_webhook_url,""}
      credentials: screen_webhook   # optional {token: ...}: sent as a bearer token
    ```
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from kedro.io.core import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)


class WebhookDataset(AbstractDataset[list[dict[str, Any]], None]):
    """Write-only: POSTs messages to ``url`` as JSON."""

    def __init__(  # noqa: PLR0913
        self,
        *,
        url: str | None = None,
        credentials: dict[str, Any] | None = None,
        batch_size: int = 100,
        timeout: float = 10.0,
        retries: int = 3,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if url and not str(url).startswith(("http://", "https://")):
            raise DatasetError(f"webhook url {url!r}: must start with http:// or https://")
        if batch_size < 1:
            raise DatasetError(f"webhook batch_size must be >= 1, got {batch_size}")
        self._url = str(url) if url else ""
        self._token = (credentials or {}).get("token")
        self._batch_size = int(batch_size)
        self._timeout = float(timeout)
        self._retries = max(1, int(retries))
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"url": self._url or None, "batch_size": self._batch_size}

    def load(self) -> None:
        raise DatasetError("WebhookDataset is write-only")

    def save(self, data: list[dict[str, Any]]) -> None:
        """POST ``data`` in batches; raise ``DatasetError`` when a batch is refused."""
        if not isinstance(data, list):
            raise DatasetError(f"webhook expects a list of messages, got {type(data).__name__}")
        if not self._url:
            if data:
                logger.warning(
                    "webhook: no url configured, %d alert(s) not sent (kept in the alerts table)",
                    len(data),
                )
            return
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        with httpx.Client(timeout=self._timeout, headers=headers) as client:
            for start in range(0, len(data), self._batch_size):
                self._post(client, {"alerts": data[start : start + self._batch_size]})
        logger.info("webhook: %d alert(s) sent to %s", len(data), self._url)

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> None:
        problem = ""
        for attempt in range(self._retries):
            try:
                response = client.post(self._url, json=body)
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500:
                    break
            time.sleep(0.2 * 2**attempt)
        raise DatasetError(
            f"webhook {self._url}: {len(body['alerts'])} alert(s) not delivered ({problem})"
        )
