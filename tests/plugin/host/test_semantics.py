"""Envoy semantics of the host, each pinned by a tiny hand-written module (see wat_modules.py)."""

from __future__ import annotations

import struct

import pytest
import wasmtime

from wasm_host import ConfigRejected, HttpStream, LogLevel, ManualClock, Vm, VmCrashed, VmError
from wasm_host.abi import Status
from wasm_host.state import decode_pairs, encode_pairs

from .wat_modules import PAUSE_UNTIL_END, RET_PTR, RET_SIZE, SCRATCH, log_buffer, log_status, proxy_module

RESPONSE_BODY = 1
RESPONSE_HEADERS = 2
REQUEST_HEADERS = 0


def _infos(vm: Vm) -> list[str]:
    return [r.message for r in vm.logs if r.level == LogLevel.INFO]


def _response(stream: HttpStream) -> None:
    stream.on_request_headers([(":method", "GET"), (":path", "/"), (":authority", "h")], end_of_stream=True)


# --- body buffering --------------------------------------------------------------------------

def test_paused_body_accumulates_and_body_size_counts_everything_held() -> None:
    vm = Vm(proxy_module(response_body=log_buffer(RESPONSE_BODY) + PAUSE_UNTIL_END))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        steps = [stream.on_response_body(b"ab", False), stream.on_response_body(b"cd", False),
                 stream.on_response_body(b"ef", True)]
    assert _infos(vm) == ["ab", "abcd", "abcdef"]
    assert [r.args[0] for r in stream.records if r.callback == "proxy_on_response_body"] == [2, 4, 6]
    assert [s.body for s in steps] == [b"", b"", b"abcdef"]
    assert not stream.response.stalled


def test_continue_sends_the_buffer_as_rewritten_and_starts_a_new_one() -> None:
    # Pause on the first chunk, continue on every later one.
    body = (log_buffer(RESPONSE_BODY)
            + "(if (result i32) (i32.eq (local.get $size) (i32.const 2)) (then (i32.const 1)) (else (i32.const 0)))")
    vm = Vm(proxy_module(response_body=body))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        steps = [stream.on_response_body(c, False) for c in (b"ab", b"cd", b"efg")]
        steps.append(stream.on_response_body(b"", True))
    assert _infos(vm) == ["ab", "abcd", "efg", ""]
    assert [s.body for s in steps] == [b"", b"abcd", b"efg", b""]
    assert stream.response.sent_body == b"abcdefg"


def test_pause_at_end_of_stream_still_delivers_and_marks_stalled() -> None:
    vm = Vm(proxy_module(response_body="i32.const 1"))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        stream.on_response_body(b"x", False)
        last = stream.on_response_body(b"y", True)
    assert last.body == b"xy" and last.end_of_stream
    assert stream.response.stalled


# --- set_buffer_bytes ranges (Envoy's Buffer::copyFrom) ---------------------------------------

@pytest.mark.parametrize(
    ("start", "length", "data", "status", "result"),
    [
        (0, 0, b"<", Status.OK, b"<hello"),           # prepend
        (0, 2, b"J", Status.OK, b"Jllo"),             # replace the first two bytes
        (0, 99, b"all new", Status.OK, b"all new"),   # length past the end drains everything
        (5, 0, b"!", Status.OK, b"hello!"),           # start at the end appends
        (70, 3, b"!", Status.OK, b"hello!"),          # start past the end appends too
        (2, 1, b"?", Status.BAD_ARGUMENT, b"hello"),  # Envoy refuses a range in the middle
    ],
)
def test_set_buffer_bytes_ranges(start: int, length: int, data: bytes, status: Status, result: bytes) -> None:
    call = (f"(call $proxy_set_buffer_bytes (i32.const {RESPONSE_BODY}) (i32.const {start}) (i32.const {length}) "
            "{data})")
    vm = Vm(proxy_module(strings={"data": data}, response_body=log_status(call) + "i32.const 0"))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        step = stream.on_response_body(b"hello", True)
    assert _infos(vm) == [str(int(status))]
    assert step.body == result


def test_body_buffer_is_not_found_outside_its_callback() -> None:
    call = (f"(call $proxy_get_buffer_bytes (i32.const {RESPONSE_BODY}) (i32.const 0) (i32.const 10) "
            f"(i32.const {RET_PTR}) (i32.const {RET_SIZE}))")
    vm = Vm(proxy_module(response_headers=log_status(call) + "i32.const 0"))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
    assert _infos(vm) == [str(int(Status.NOT_FOUND))]


# --- header StopIteration as Higress handles it ------------------------------------------------

LATE_EDIT = (f"(drop (call $proxy_replace_header_map_value (i32.const {RESPONSE_HEADERS}) {{name}} {{value}}))")


def test_held_headers_take_edits_made_in_body_callbacks_and_leave_with_the_first_continue() -> None:
    vm = Vm(proxy_module(strings={"name": b"x-late", "value": b"yes"},
                         response_headers="i32.const 1", response_body=LATE_EDIT + PAUSE_UNTIL_END))
    with HttpStream(vm) as stream:
        _response(stream)
        held = stream.on_response_headers([(":status", "200"), ("content-length", "4")])
        first = stream.on_response_body(b"ab", False)
        last = stream.on_response_body(b"cd", True)
    assert held.headers is None and first.headers is None and first.body == b""
    assert last.headers == [(":status", "200"), ("content-length", "4"), ("x-late", "yes")]
    assert last.body == b"abcd"


def test_held_headers_go_out_before_the_first_body_bytes_let_through() -> None:
    vm = Vm(proxy_module(strings={"name": b"x-late", "value": b"yes"},
                         response_headers="i32.const 1", response_body=LATE_EDIT + "i32.const 0"))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        first = stream.on_response_body(b"ab", False)
        second = stream.on_response_body(b"cd", True)
    assert first.headers == [(":status", "200"), ("x-late", "yes")] and first.body == b"ab"
    assert second.headers is None and second.body == b"cd"


def test_held_headers_without_body_go_out_at_end_of_stream() -> None:
    vm = Vm(proxy_module(request_headers="i32.const 1"))
    with HttpStream(vm) as stream:
        step = stream.on_request_headers([(":method", "GET"), (":path", "/")], end_of_stream=True)
    assert step.headers == [(":method", "GET"), (":path", "/")] and step.end_of_stream
    assert stream.request.stalled


def test_stop_all_buffers_without_calling_the_module_until_it_continues() -> None:
    vm = Vm(proxy_module(response_headers="i32.const 4", response_body=log_buffer(RESPONSE_BODY) + "i32.const 0"))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        first = stream.on_response_body(b"ab", False)
        last = stream.on_response_body(b"cd", True)
    assert _infos(vm) == []  # never called: StopAll holds everything
    assert first.body == b"" and last.headers is not None and last.body == b"abcd"


# --- properties, header values, time ------------------------------------------------------------

SOURCE = (log_status("(call $proxy_get_property {path} (i32.const 0) (i32.const 4))")
          + "(drop (call $proxy_log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4))))")


def test_source_address_property() -> None:
    vm = Vm(proxy_module(strings={"path": b"source\0address"}, request_headers=SOURCE + "i32.const 0"))
    with HttpStream(vm, source_address="[2001:db8::1]:5") as stream:
        stream.on_request_headers([(":path", "/")], end_of_stream=True)
    assert _infos(vm) == ["0", "[2001:db8::1]:5"]


def test_missing_property_is_not_found() -> None:
    vm = Vm(proxy_module(strings={"path": b"source\0address"},
                         request_headers=log_status("(call $proxy_get_property {path} (i32.const 0) (i32.const 4))")
                         + "i32.const 0"))
    with HttpStream(vm, source_address=None) as stream:
        stream.on_request_headers([(":path", "/")], end_of_stream=True)
    assert _infos(vm) == [str(int(Status.NOT_FOUND))]


def test_header_value_lookup_is_case_insensitive_and_missing_is_not_found() -> None:
    get = "(call $proxy_get_header_map_value (i32.const 0) {{{key}}} (i32.const 0) (i32.const 4))"
    body = (log_status(get.format(key="upper")) + "(drop (call $proxy_log (i32.const 2) (i32.load (i32.const 0)) "
            "(i32.load (i32.const 4))))" + log_status(get.format(key="absent")) + "i32.const 0")
    vm = Vm(proxy_module(strings={"upper": b"X-Key", "absent": b"x-none"}, request_headers=body))
    with HttpStream(vm) as stream:
        stream.on_request_headers([(":path", "/"), ("x-key", "v1"), ("x-key", "v2")], end_of_stream=True)
    assert _infos(vm) == ["0", "v1", str(int(Status.NOT_FOUND))]


def test_current_time_comes_from_the_injected_clock() -> None:
    body = (f"(drop (call $proxy_get_current_time_nanoseconds (i32.const {SCRATCH})))"
            f"(drop (call $proxy_log (i32.const 2) (i32.const {SCRATCH}) (i32.const 8)))")
    clock = ManualClock(start_ns=1_000)
    vm = Vm(proxy_module(request_headers=body + "i32.const 0"), clock=clock)
    clock.advance(ms=2)
    with HttpStream(vm) as stream:
        stream.on_request_headers([(":path", "/")], end_of_stream=True)
    (now_ns,) = struct.unpack("<Q", _infos(vm)[0].encode("utf-8", "surrogateescape"))
    assert now_ns == 2_001_000


def test_send_local_response_is_reported() -> None:
    body = ("(drop (call $proxy_send_local_response (i32.const 403) {details} {body} {headers} (i32.const -1)))"
            "i32.const 1")
    headers = encode_pairs([("x-why", "denied")])
    vm = Vm(proxy_module(strings={"details": b"nope", "body": b"forbidden", "headers": headers}, request_headers=body))
    with HttpStream(vm) as stream:
        step = stream.on_request_headers([(":path", "/")], end_of_stream=True)
    assert step.local_response is not None
    assert (step.local_response.status_code, step.local_response.body) == (403, b"forbidden")
    assert step.local_response.headers == [("x-why", "denied")]


def test_pairs_round_trip() -> None:
    pairs = [(":path", "/a"), ("x", ""), ("k\u00e9", "v\udcff")]
    assert decode_pairs(encode_pairs(pairs)) == pairs


# --- start-up order and failures ------------------------------------------------------------------

def test_start_order_initialize_main_create_vm_start_configure() -> None:
    def say(word: str) -> str:
        return f"(drop (call $proxy_log (i32.const 2) {{{word}}}))"

    extra = f"""
      (func (export "_initialize") {say('init')})
      (func (export "main") (param i32 i32) (result i32) {say('main')} i32.const 0)
      (func (export "proxy_on_tick") (param i32) {say('tick')})"""
    words = {w: w.encode() for w in ("init", "main", "configure", "tick")}
    vm = Vm(proxy_module(strings=words, extra=extra, configure=say("configure") + "i32.const 1"))
    vm.tick()
    assert _infos(vm) == ["init", "main", "configure", "tick"]


def test_start_runs_start_when_there_is_no_initialize() -> None:
    extra = '(func (export "_start") (drop (call $proxy_log (i32.const 2) {word})))'
    vm = Vm(proxy_module(strings={"word": b"start"}, extra=extra))
    assert _infos(vm) == ["start"]


def test_configure_false_is_a_refused_config_with_the_plugin_s_reason() -> None:
    refuse = "(drop (call $proxy_log (i32.const 4) {why})) i32.const 0"
    with pytest.raises(ConfigRejected, match="realIPToHeader must be a header name"):
        Vm(proxy_module(strings={"why": b"realIPToHeader must be a header name"}, configure=refuse))


def test_plugin_configuration_buffer_is_readable_in_configure() -> None:
    body = ("(drop (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size) (i32.const 0) "
            "(i32.const 4))) (drop (call $proxy_log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4)))) "
            "i32.const 1")
    vm = Vm(proxy_module(configure=body), plugin_config='{"a":1}')
    assert _infos(vm) == ['{"a":1}']


def test_no_abi_marker_is_refused() -> None:
    with pytest.raises(VmError, match="proxy_abi_version"):
        Vm(wasmtime.wat2wasm('(module (memory (export "memory") 1))'))


def test_unknown_import_is_refused_by_name() -> None:
    wat = ('(module (import "env" "proxy_teleport" (func (param i32) (result i32))) (memory (export "memory") 1)'
           ' (func (export "malloc") (param i32) (result i32) i32.const 0) (func (export "proxy_abi_version_0_2_1")))')
    with pytest.raises(VmError, match="env.proxy_teleport"):
        Vm(wasmtime.wat2wasm(wat))


def test_malloc_is_preferred_over_proxy_on_memory_allocate() -> None:
    # A module exporting both, whose proxy_on_memory_allocate traps: the host must use malloc.
    extra = '(func (export "proxy_on_memory_allocate") (param i32) (result i32) unreachable)'
    vm = Vm(proxy_module(strings={"path": b"source\0address"}, request_headers=SOURCE + "i32.const 0", extra=extra))
    with HttpStream(vm, source_address="1.2.3.4:5") as stream:
        stream.on_request_headers([(":path", "/")], end_of_stream=True)
    assert _infos(vm) == ["0", "1.2.3.4:5"]


def test_a_trap_crashes_the_vm_for_good_and_contexts_still_close() -> None:
    vm = Vm(proxy_module(response_body="unreachable"))
    stream = HttpStream(vm)
    _response(stream)
    stream.on_response_headers([(":status", "200")])
    with pytest.raises(VmCrashed, match="proxy_on_response_body"):
        stream.on_response_body(b"x", True)
    stream.close()
    assert vm.live_contexts == 0
    with pytest.raises(VmCrashed):
        HttpStream(vm)


def test_invalid_pointer_is_an_invalid_memory_access_status_not_a_trap() -> None:
    bad = log_status("(call $proxy_log (i32.const 2) (i32.const 262000) (i32.const 9999))")
    vm = Vm(proxy_module(request_headers=bad + "i32.const 0"))
    with HttpStream(vm) as stream:
        stream.on_request_headers([(":path", "/")], end_of_stream=True)
    assert _infos(vm) == [str(int(Status.INVALID_MEMORY_ACCESS))]


def test_trailers_release_the_held_body_with_them() -> None:
    vm = Vm(proxy_module(response_body="i32.const 1"))
    with HttpStream(vm) as stream:
        _response(stream)
        stream.on_response_headers([(":status", "200")])
        held = stream.on_response_body(b"abc", False)
        last = stream.on_response_trailers([("grpc-status", "0")])
    assert held.body == b"" and held.headers is None
    assert last.headers is None and last.body == b"abc"  # headers went out with Continue
    assert last.trailers == [("grpc-status", "0")] and last.end_of_stream


def test_a_dropped_vm_frees_its_store() -> None:
    # Host functions live as long as their store; they must not keep the store alive in turn.
    import gc
    import weakref

    vm = Vm(proxy_module())
    with HttpStream(vm) as stream:
        _response(stream)
    store = weakref.ref(vm.store)
    del vm, stream
    gc.collect()
    assert store() is None
