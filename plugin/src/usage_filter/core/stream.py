"""Per-stream state machine (being written: see the API below).

class StreamState:
    def __init__(self, config: Config) -> None
    def on_request_headers(self, headers: Sequence[tuple[str, str]],
                           source_address: str | None, now_ns: int) -> HeadersDecision
    def on_request_body(self, chunk: bytes, end_of_stream: bool) -> BodyDecision
    def on_response_headers(self, headers: Sequence[tuple[str, str]], now_ns: int) -> HeadersDecision
    def on_response_body(self, chunk: bytes, end_of_stream: bool, now_ns: int) -> BodyDecision

`headers` are (name, value) pairs as the host gives them (pseudo-headers such as `:path`,
`:method`, `:status` included). `chunk` is only the bytes that are new since the previous body
callback of that direction (after a paused callback the host's buffer holds more: the binding
passes the new tail only). No method ever raises: on an internal error the stream turns
pass-through and the decision carries `error` plus every byte not yet forwarded.
"""
