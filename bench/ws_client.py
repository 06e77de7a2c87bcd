"""A Streamlit client that speaks the app's WebSocket protocol, without a browser (issue 16).

The sessions benchmark (bench/sessions.py) uses it to load one dashboard server the way a class does: each
student's browser runs on the student's own laptop, so the server's machine only serves. One
``StreamlitClient`` is one browser tab as the server sees it:

Handshake. A WebSocket to ``ws://host:port/_stcore/stream`` with the subprotocol ``streamlit`` (the browser
sends ``streamlit, <xsrf token>, <session id to resume>``; the server selects the first entry and reads the
others only when present). No Origin header, so the server does not look for an XSRF cookie; a new session
is created on connect (``runtime.connect_session``).

Runs. Every run is asked for with one ``BackMsg.rerun_script`` (a ``ClientState``), built as the frontend's
``App.sendRerunBackMsg`` builds it (streamlit 1.67):

- ``query_string``: the page's query without "?" (``user=7``), then whatever the server set with
  ``page_info_changed``, plus a parameter for each URL-bound widget (``bind="query-params"``) the person
  changed, as the frontend writes it into the address bar (``w.als=0.45``; removed when back at the default);
- ``page_name``: the page's URL path (``Fusion_Lab``) on the first run only, when no page is known yet;
  afterwards ``page_script_hash``, from the server's ``navigation`` (or ``new_session``) message;
- ``widget_states``: every widget the page shows (outside forms, which send theirs on submit only), each with
  the value the frontend holds: the server's ``value`` when it set one (``set_value``), else the widget's
  ``default`` on first sight, else what this client set. Slider: ``double_array_value``; checkbox:
  ``bool_value``; text input and area: ``string_value``; number input: ``int_value`` or ``double_value``;
  selectbox and radio: ``string_value`` (the option's text); multiselect, pills and segmented control:
  ``string_array_value``. Buttons (triggers), uploaders, date and time inputs and data selections are left
  out: the server then keeps the value it has, as it does for a browser that has not touched them;
- ``fragment_id``: the changed widget's fragment (the delta's ``fragment_id``), empty outside fragments;
- ``cached_message_hashes``: the hashes of the cacheable ForwardMsgs this client holds (the frontend's
  ForwardMsgCache, entries dropped after ``MAX_CACHED_MESSAGE_AGE`` runs unused), so the server sends a
  ``ref_hash`` instead of a large message it already sent;
- ``context_info``: timezone, locale, the page's full URL (``st.context.url``) and colour scheme.

Replies. A reader task reads every ForwardMsg as it arrives (as the browser does, so the server's send queue
never backs up) and keeps what the page shows: elements and blocks by ``metadata.delta_path``, elements a
finished run did not redraw removed (the frontend's stale-node clearing; a fragment run only clears inside its
fragments), widget values as above. A run is over at the first ``script_finished`` after the request with
status 0 (the whole script), 1 (a compile error) or 3 (a fragment run); 2 (stopped early because a rerun was
requested) is not the end of the run asked for, and a weight move on this dashboard ends that way: the
slider's callback asks for a rerun of the live fragments only.

Only the Python standard library, streamlit's protobufs and ``websockets`` (a dependency of streamlit 1.67).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState

SUBPROTOCOL = "streamlit"
STREAM_PATH = "/_stcore/stream"
MAX_CACHED_MESSAGE_AGE = 2  # runs; streamlit's global.maxCachedMessageAge, which the frontend's cache follows
RUN_ENDS = (
    ForwardMsg.FINISHED_SUCCESSFULLY,
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
)


class ProtocolError(RuntimeError):
    """The connection closed, or the page lacks what was asked of it (a widget label that is not there)."""


@dataclass
class Element:
    """One element or block the page shows: its kind (``slider``, ``metric``, ``block:expandable``...), its
    proto (the Element's or Block's one-of value), the fragment it belongs to and its place."""

    kind: str
    proto: Any
    fragment_id: str
    path: tuple[int, ...]

    @property
    def widget_id(self) -> str:
        if self.kind == "block:expandable":  # an expander with on_change="rerun" is a widget: its open state
            return str(self.proto.expandable.id or "")
        return str(getattr(self.proto, "id", "") or "")

    @property
    def label(self) -> str:
        if self.kind == "block:expandable":
            return str(self.proto.expandable.label or "")
        return str(getattr(self.proto, "label", "") or "")


@dataclass
class Run:
    """One run as this client saw it: seconds from sending the request to the run's end (None: no end within
    the timeout), the status that ended it, the messages and bytes that arrived for it (a run stopped early
    for the rerun included), which paths its last part drew and the exceptions it showed."""

    seconds: float | None
    status: int | None
    messages: int = 0
    bytes: int = 0
    fragment_ids: tuple[str, ...] = ()
    drawn: frozenset[tuple[int, ...]] = frozenset()
    exceptions: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status is not None


@dataclass
class _Finish:
    at: float
    status: int
    fragment_ids: tuple[str, ...]
    messages: int  # the client's totals when it arrived
    bytes: int
    drawn: frozenset[tuple[int, ...]]
    exceptions: tuple[str, ...]


@dataclass
class _CacheEntry:
    msg: ForwardMsg
    last_used_run: int


def _js_number(x: float) -> str:
    """A number as JavaScript's ``String(x)`` writes it (1 not 1.0; 0.45 as 0.45)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _state_value(state: WidgetState) -> Any:
    kind = state.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(state, kind)
    if kind in ("double_array_value", "int_array_value", "string_array_value"):
        return list(value.data)
    return value


def _set_state(state: WidgetState, kind: str, value: Any) -> WidgetState:
    if kind in ("double_array_value", "int_array_value", "string_array_value"):
        getattr(state, kind).data[:] = list(value)
    else:
        setattr(state, kind, value)
    return state


def _widget_state(el: Element, *, initial: bool, default: bool = False) -> WidgetState | None:
    """The WidgetState the frontend holds for ``el`` when it is drawn: the server's value when it set one, the
    default when ``initial`` (first sight), else None (keep the client's own). None as well for widgets whose
    state the frontend sends only on use (buttons, uploaders) or that this client does not model.
    ``default``: the widget's default whatever the server set (what a URL parameter is compared with)."""
    p, kind = el.proto, el.kind
    if getattr(p, "form_id", ""):  # a form's widgets are sent on submit only
        return None
    server = bool(getattr(p, "set_value", False)) and not default
    if not server and not (initial or default):
        return None
    ws = WidgetState(id=el.widget_id)
    if kind == "slider":
        values = list(p.value) if server else list(p.default)
        if p.options:  # select_slider: indices into the options' texts
            return _set_state(ws, "string_array_value", [p.options[int(i)] for i in values])
        return _set_state(ws, "double_array_value", values)
    if kind == "checkbox":
        return _set_state(ws, "bool_value", bool(p.value if server else p.default))
    if kind in ("text_input", "text_area", "color_picker", "number_input"):
        name = "value" if server else "default"
        if kind != "color_picker" and not p.HasField(name):
            return None
        value = getattr(p, name)
        if kind != "number_input":
            return _set_state(ws, "string_value", str(value))
        if p.data_type == NumberInput.INT:
            return _set_state(ws, "int_value", int(value))
        return _set_state(ws, "double_value", float(value))
    if kind in ("selectbox", "radio"):
        if server:
            return _set_state(ws, "string_value", p.raw_value) if p.HasField("raw_value") else None
        if p.HasField("default") and 0 <= p.default < len(p.options):
            return _set_state(ws, "string_value", p.options[p.default])
        return None
    if kind in ("multiselect", "button_group"):  # the options' texts (a pill's or segment's content)
        options = [o.content for o in p.options] if kind == "button_group" else list(p.options)
        texts = list(p.raw_values) if server else [options[i] for i in p.default if 0 <= i < len(options)]
        return _set_state(ws, "string_array_value", texts)
    return None


def _url_texts(state: WidgetState) -> list[str]:
    """A widget value as the frontend writes it into the address bar (one text a value)."""
    value = _state_value(state)
    if isinstance(value, list):
        return [_js_number(v) if isinstance(v, float) else str(v) for v in value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, float):
        return [_js_number(value)]
    return [] if value is None else [str(value)]


class StreamlitClient:
    """One browser tab's worth of Streamlit session, over the WebSocket protocol (see the module docstring).

    ``base``: the server's URL (``http://127.0.0.1:8501``); ``page``: the page's URL path (``Fusion_Lab``, ""
    for the main page); ``query``: the page's query string without "?". ``open()`` connects and waits for the
    first run; ``set_widget()`` changes a widget as a person would and waits for the run it causes.
    """

    def __init__(self, base: str, page: str = "", query: str = "", *, locale: str = "en-US") -> None:
        self.base = base.rstrip("/")
        self.page = page.strip("/")
        self.query: list[tuple[str, str]] = parse_qsl(query.lstrip("?"), keep_blank_values=True)
        self.locale = locale
        self.page_script_hash = ""
        self.elements: dict[tuple[int, ...], Element] = {}
        self.widget_states: dict[str, WidgetState] = {}
        self.runs = 0  # runs finished (any end, fragment runs included)
        self.messages = 0
        self.bytes = 0
        self.cache_misses = 0  # ref_hash messages whose original this client did not hold
        self.closed: BaseException | None = None
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._finishes: list[_Finish] = []
        self._signal = asyncio.Event()
        self._cache: dict[str, _CacheEntry] = {}
        self._drawn: set[tuple[int, ...]] = set()
        self._exceptions: list[str] = []
        self._last_mark = 0

    # ------------------------------------------------------------------------------------------ connection

    @property
    def ws_url(self) -> str:
        scheme, _, rest = self.base.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{STREAM_PATH}"

    @property
    def url(self) -> str:
        """The address bar: the page and its current query (what ``st.context.url`` reports)."""
        query = self.query_string
        return f"{self.base}/{self.page}" + (f"?{query}" if query else "")

    @property
    def query_string(self) -> str:
        return urlencode(sorted(self.query, key=lambda kv: kv[0]), quote_via=quote, safe=",")

    async def open(self, timeout: float = 300.0) -> Run:
        """Connect, ask for the page's first run and wait for its end (``timeout`` seconds: the first load of
        the dashboard on a cold server fits the members)."""
        self._ws = await websockets.connect(
            self.ws_url,
            subprotocols=[websockets.Subprotocol(SUBPROTOCOL)],
            max_size=None,  # the server bounds its messages itself (server.maxMessageSize)
            open_timeout=timeout,
            # Offers per-message deflate, as browsers do; Streamlit takes it only with
            # server.enableWebsocketCompression (off by default).
            compression="deflate",
        )
        self._reader = asyncio.create_task(self._read(), name=f"streamlit-client {self.page}")
        run = await self.rerun(timeout=timeout)
        if not run.finished:
            raise ProtocolError(f"no first run of {self.url} within {timeout:g} s")
        return run

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def __aenter__(self) -> StreamlitClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------ reading

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                at = time.perf_counter()
                data = raw if isinstance(raw, bytes) else raw.encode()
                self.messages += 1
                self.bytes += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg, at)
        except (websockets.ConnectionClosed, OSError) as exc:
            self.closed = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a message this client cannot handle: surface it, do not hang
            self.closed = exc
        finally:
            if self.closed is None:
                self.closed = ConnectionError("connection closed")
            self._signal.set()

    def _handle(self, msg: ForwardMsg, at: float) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            entry = self._cache.get(msg.ref_hash)
            if entry is None:
                self.cache_misses += 1
                return
            entry.last_used_run = self.runs
            full = ForwardMsg()
            full.CopyFrom(entry.msg)
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = _CacheEntry(msg, self.runs)
        if kind == "delta":
            self._delta(msg)
        elif kind == "new_session":
            if msg.new_session.page_script_hash:
                self.page_script_hash = msg.new_session.page_script_hash
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = parse_qsl(msg.page_info_changed.query_string, keep_blank_values=True)
        elif kind == "script_finished":
            self._finished(msg, at)

    def _delta(self, msg: ForwardMsg) -> None:
        delta = msg.delta
        path = tuple(int(i) for i in msg.metadata.delta_path)
        which = delta.WhichOneof("type")
        if which == "new_element":
            el_kind = str(delta.new_element.WhichOneof("type"))
            el = Element(el_kind, getattr(delta.new_element, el_kind), delta.fragment_id, path)
            if el_kind == "exception":
                self._exceptions.append(f"{el.proto.type}: {el.proto.message}"[:300])
            wid = el.widget_id
            if wid:
                state = _widget_state(el, initial=wid not in self.widget_states)
                if state is not None:
                    self.widget_states[wid] = state
        elif which == "add_block":
            block = delta.add_block
            block_kind = block.WhichOneof("type")
            el = Element(f"block:{block_kind or 'vertical'}", block, delta.fragment_id, path)
        else:  # new_transient and the like: nothing this client reads
            return
        self.elements[path] = el
        self._drawn.add(path)

    def _finished(self, msg: ForwardMsg, at: float) -> None:
        status = int(msg.script_finished)
        fragments = tuple(msg.metadata.run.fragment_ids)
        drawn = frozenset(self._drawn)
        if status == ForwardMsg.FINISHED_SUCCESSFULLY:
            self._clear_stale(drawn, None)
        elif status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
            self._clear_stale(drawn, set(fragments))
        self.runs += 1
        for h in [h for h, e in self._cache.items() if self.runs - e.last_used_run > MAX_CACHED_MESSAGE_AGE]:
            del self._cache[h]
        self._finishes.append(_Finish(at, status, fragments, self.messages, self.bytes, drawn, tuple(self._exceptions)))
        self._drawn.clear()
        self._exceptions.clear()
        self._signal.set()

    def _clear_stale(self, drawn: frozenset[tuple[int, ...]], fragments: set[str] | None) -> None:
        """Drop what the run that just finished did not draw (only inside ``fragments`` for a fragment run) and
        the values of widgets no longer shown, as the frontend does when a run ends."""
        for path in [p for p in self.elements if p not in drawn]:
            if fragments is None or self.elements[path].fragment_id in fragments:
                del self.elements[path]
        shown = {el.widget_id for el in self.elements.values() if el.widget_id}
        for wid in [w for w in self.widget_states if w not in shown]:
            del self.widget_states[wid]

    # ------------------------------------------------------------------------------------------ the page

    def find(self, kind: str | None = None, label: str | None = None) -> list[Element]:
        """Elements of this ``kind`` (``slider``, ``metric``, ``code``...) and/or ``label``, in page order."""
        out = [
            el
            for el in self.elements.values()
            if (kind is None or el.kind == kind) and (label is None or el.label == label)
        ]
        return sorted(out, key=lambda el: el.path)

    def widget(self, label: str, kind: str | None = None) -> Element:
        found = [el for el in self.find(kind, label) if el.widget_id]
        if not found:
            raise ProtocolError(f"no {kind or 'widget'} labelled {label!r} on {self.url}")
        return found[0]

    def value(self, label: str, kind: str | None = None) -> Any:
        """The value the page shows for a widget: a slider's one value as a float (a range as a list)."""
        el = self.widget(label, kind)
        state = self.widget_states.get(el.widget_id)
        value = None if state is None else _state_value(state)
        if el.kind == "slider" and isinstance(value, list) and len(value) == 1:
            return value[0]
        return value

    def metric(self, label: str) -> str | None:
        """The text of the metric tile labelled ``label`` (e.g. "NDCG@10" -> "0.4117"), None when none is shown."""
        found = self.find("metric", label)
        return str(found[0].proto.body) if found else None

    def texts(self, kind: str = "markdown") -> list[str]:
        """The text of every element of ``kind`` shown: markdown bodies, code blocks' code."""
        attr = {"markdown": "body", "code": "code_text", "text": "body", "heading": "body"}.get(kind, "body")
        return [str(getattr(el.proto, attr, "")) for el in self.find(kind)]

    # ------------------------------------------------------------------------------------------ requests

    def client_state_msg(self, fragment_id: str = "") -> BackMsg:
        """The ``rerun_script`` BackMsg the frontend would send now."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        if self.page_script_hash:
            cs.page_script_hash = self.page_script_hash
        else:
            cs.page_name = self.page
        cs.widget_states.SetInParent()
        shown = {el.widget_id for el in self.elements.values() if el.widget_id}
        cs.widget_states.widgets.extend(state for wid, state in self.widget_states.items() if wid in shown)
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.cached_message_hashes.extend(self._cache)
        info = cs.context_info
        info.timezone, info.timezone_offset, info.locale = "UTC", 0, self.locale
        info.url, info.is_embedded, info.color_scheme = self.url, False, "light"
        return msg

    async def rerun(self, fragment_id: str = "", timeout: float = 30.0) -> Run:
        """Send a ``rerun_script`` with the current widget states and wait for the run's end (see ``Run``)."""
        return await self._request(self.client_state_msg(fragment_id), timeout)

    async def set_widget(self, label: str, value: Any, kind: str | None = None, timeout: float = 30.0) -> Run:
        """Change a widget as a person would (a slider: ``value`` a number, or a list for a range) and wait for
        the run it causes: all widget states are sent, the changed one with its new value, from the widget's
        fragment, the URL updated when the widget is bound to it."""
        el = self.widget(label, kind)
        state = WidgetState(id=el.widget_id)
        if el.kind == "slider":
            values = list(value) if isinstance(value, Sequence) else [value]
            if el.proto.options:
                _set_state(state, "string_array_value", [str(v) for v in values])
            else:
                _set_state(state, "double_array_value", [float(v) for v in values])
        elif el.kind == "checkbox":
            _set_state(state, "bool_value", bool(value))
        elif el.kind in ("text_input", "text_area", "selectbox", "radio", "color_picker"):
            _set_state(state, "string_value", str(value))
        elif el.kind == "number_input":
            if el.proto.data_type == NumberInput.INT:
                _set_state(state, "int_value", int(value))
            else:
                _set_state(state, "double_value", float(value))
        elif el.kind in ("multiselect", "button_group"):
            _set_state(state, "string_array_value", [str(v) for v in value])
        else:
            raise ProtocolError(f"setting a {el.kind} is not modelled")
        self.widget_states[el.widget_id] = state
        self._bind_url(el, state)
        return await self._request(self.client_state_msg(el.fragment_id), timeout)

    async def open_expander(self, label: str, timeout: float = 30.0) -> Run:
        """Open the expander labelled ``label`` as a person's click does, for one drawn only while open
        (``st.expander(..., on_change="rerun")``), and wait for the run that draws its contents."""
        found = [el for el in self.find("block:expandable", label) if el.widget_id]
        if not found:
            raise ProtocolError(f"no expander labelled {label!r} that reruns when opened, on {self.url}")
        el = found[0]
        self.widget_states[el.widget_id] = _set_state(WidgetState(id=el.widget_id), "bool_value", True)
        return await self._request(self.client_state_msg(el.fragment_id), timeout)

    def _bind_url(self, el: Element, state: WidgetState) -> None:
        key = str(getattr(el.proto, "query_param_key", "") or "")
        if not key:
            return
        default = _widget_state(el, initial=True, default=True)
        rest = [(k, v) for k, v in self.query if k != key]
        if default is not None and _state_value(default) == _state_value(state):
            self.query = rest
        else:
            self.query = rest + [(key, text) for text in _url_texts(state)]

    async def _request(self, msg: BackMsg, timeout: float) -> Run:
        if self._ws is None:
            raise ProtocolError("not connected: call open() first")
        if self.closed is not None:
            raise ProtocolError(f"connection closed: {self.closed!r}")
        mark = self._last_mark = len(self._finishes)
        messages, n_bytes = self.messages, self.bytes
        t0 = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        end = await self._wait_end(mark, t0 + timeout)
        if end is None:
            return Run(seconds=None, status=None, messages=self.messages - messages, bytes=self.bytes - n_bytes)
        return Run(
            seconds=end.at - t0,
            status=end.status,
            messages=end.messages - messages,
            bytes=end.bytes - n_bytes,
            fragment_ids=end.fragment_ids,
            drawn=end.drawn,
            exceptions=end.exceptions,
        )

    async def _wait_end(self, mark: int, deadline: float) -> _Finish | None:
        """The first run end (status in RUN_ENDS) among the finishes after index ``mark``, or None at ``deadline``."""
        while True:
            for end in self._finishes[mark:]:
                if end.status in RUN_ENDS:
                    return end
            if self.closed is not None:
                raise ProtocolError(f"connection closed: {self.closed!r}")
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self._signal.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signal.wait(), timeout=left)

    async def settle(self, timeout: float = 30.0) -> bool:
        """After a request that timed out: wait for its run to end (True) or ``timeout`` seconds (False), so its
        late end is not taken for the next request's."""
        return await self._wait_end(self._last_mark, time.perf_counter() + timeout) is not None


__all__ = ["RUN_ENDS", "Element", "ProtocolError", "Run", "StreamlitClient"]
