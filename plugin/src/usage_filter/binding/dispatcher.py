"""The module's callback entry points: context_id table, forwarding, fail-open guard.

The C shim calls the `proxy_on_*` methods of the one registered `Dispatcher` with the integer
arguments of the exported function of the same name, and returns what they return.

- Context ids map to a `RootContext` (parent 0) or an `HttpContext` (parent = its root).
  An id the table does not hold is a host/binding bug: it raises `UnknownContext`, which the
  guard logs, rather than being ignored.
- Fail open: every entry point catches any exception, logs one error line and returns the safe
  default: Continue for HTTP callbacks (traffic flows unmodified), false for vm_start/configure
  (Envoy then reports the plugin as failed instead of it silently doing nothing).
"""

from __future__ import annotations

from usage_filter.binding import hostcalls
from usage_filter.binding.abi import DataAction, HeadersAction, LogLevel
from usage_filter.binding.contexts import HttpContext, RootContext

__all__ = ["Dispatcher", "UnknownContext"]


class UnknownContext(LookupError):
    """The host named a context id this module never created (or already deleted)."""


def _log_failure(callback: str, context_id: int, exc: BaseException) -> None:
    hostcalls.log(
        LogLevel.ERROR,
        f"token-usage: {callback}(context {context_id}) failed: {type(exc).__name__}: {exc}",
    )


class Dispatcher:
    def __init__(self) -> None:
        self._roots: dict[int, RootContext] = {}
        self._streams: dict[int, HttpContext] = {}

    # -- context lifecycle -----------------------------------------------------------------

    def proxy_on_context_create(self, context_id: int, parent_context_id: int) -> None:
        try:
            if context_id in self._roots or context_id in self._streams:
                raise UnknownContext(f"context {context_id} created twice")
            if parent_context_id == 0:
                self._roots[context_id] = RootContext(context_id)
            else:
                self._streams[context_id] = self._root(parent_context_id).new_http_context(
                    context_id
                )
        except Exception as exc:  # noqa: BLE001 - fail open, never trap the VM
            _log_failure("proxy_on_context_create", context_id, exc)

    def proxy_on_done(self, context_id: int) -> int:
        try:
            stream = self._streams.get(context_id)
            if stream is not None:
                stream.close()
            elif context_id not in self._roots:
                raise UnknownContext(f"unknown context {context_id}")
        except Exception as exc:  # noqa: BLE001
            _log_failure("proxy_on_done", context_id, exc)
        return 1

    def proxy_on_log(self, context_id: int) -> None:
        return None

    def proxy_on_delete(self, context_id: int) -> None:
        try:
            stream = self._streams.pop(context_id, None)
            if stream is not None:
                stream.close()
            elif self._roots.pop(context_id, None) is None:
                raise UnknownContext(f"unknown context {context_id}")
        except Exception as exc:  # noqa: BLE001
            _log_failure("proxy_on_delete", context_id, exc)

    # -- plugin ----------------------------------------------------------------------------

    def proxy_on_vm_start(self, context_id: int, vm_configuration_size: int) -> int:
        try:
            return int(self._root(context_id).on_vm_start(vm_configuration_size))
        except Exception as exc:  # noqa: BLE001
            _log_failure("proxy_on_vm_start", context_id, exc)
            return 0

    def proxy_on_configure(self, context_id: int, plugin_configuration_size: int) -> int:
        try:
            return int(self._root(context_id).on_configure(plugin_configuration_size))
        except Exception as exc:  # noqa: BLE001
            _log_failure("proxy_on_configure", context_id, exc)
            return 0

    # -- HTTP ------------------------------------------------------------------------------

    def proxy_on_request_headers(self, context_id: int, num_headers: int, end_of_stream: int) -> int:
        try:
            return self._stream(context_id).on_request_headers(num_headers, bool(end_of_stream))
        except Exception as exc:  # noqa: BLE001
            self._pass_through("proxy_on_request_headers", context_id, exc)
            return HeadersAction.CONTINUE

    def proxy_on_request_body(self, context_id: int, body_size: int, end_of_stream: int) -> int:
        try:
            return self._stream(context_id).on_request_body(body_size, bool(end_of_stream))
        except Exception as exc:  # noqa: BLE001
            self._pass_through("proxy_on_request_body", context_id, exc)
            return DataAction.CONTINUE

    def proxy_on_request_trailers(self, context_id: int, num_trailers: int) -> int:
        try:
            return self._stream(context_id).on_request_trailers(num_trailers)
        except Exception as exc:  # noqa: BLE001
            self._pass_through("proxy_on_request_trailers", context_id, exc)
            return HeadersAction.CONTINUE

    def proxy_on_response_headers(
        self, context_id: int, num_headers: int, end_of_stream: int
    ) -> int:
        try:
            return self._stream(context_id).on_response_headers(num_headers, bool(end_of_stream))
        except Exception as exc:  # noqa: BLE001
            self._pass_through("proxy_on_response_headers", context_id, exc)
            return HeadersAction.CONTINUE

    def proxy_on_response_body(self, context_id: int, body_size: int, end_of_stream: int) -> int:
        try:
            return self._stream(context_id).on_response_body(body_size, bool(end_of_stream))
        except Exception as exc:  # noqa: BLE001
            self._pass_through("proxy_on_response_body", context_id, exc)
            return DataAction.CONTINUE

    def proxy_on_response_trailers(self, context_id: int, num_trailers: int) -> int:
        try:
            return self._stream(context_id).on_response_trailers(num_trailers)
        except Exception as exc:  # noqa: BLE001
            self._pass_through("proxy_on_response_trailers", context_id, exc)
            return HeadersAction.CONTINUE

    def _pass_through(self, callback: str, context_id: int, exc: BaseException) -> None:
        """Log the failure and stop processing the stream: its later callbacks just Continue.
        (Bytes the core held back from earlier callbacks, e.g. an incomplete SSE event, are
        lost with it; the core's own errors never lose bytes, see core/stream.py.)"""
        _log_failure(callback, context_id, exc)
        stream = self._streams.get(context_id)
        if stream is not None:
            stream.close()

    # -- lookup ----------------------------------------------------------------------------

    def _root(self, context_id: int) -> RootContext:
        root = self._roots.get(context_id)
        if root is None:
            raise UnknownContext(f"unknown root context {context_id}")
        return root

    def _stream(self, context_id: int) -> HttpContext:
        stream = self._streams.get(context_id)
        if stream is None:
            raise UnknownContext(f"unknown HTTP context {context_id}")
        return stream
