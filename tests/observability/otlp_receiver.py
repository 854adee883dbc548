"""A small OTLP trace receiver for the tests: OTLP/HTTP (protobuf or JSON, `POST /v1/traces`) and
OTLP/gRPC (`TraceService/Export`) on loopback, decoding with the official
`opentelemetry-proto` definitions (no OpenTelemetry collector installs from the package
registries this project uses). Every span received is kept as a plain dict.

Run alone (`python otlp_receiver.py DUMP.json`) it listens on two free ports, prints them,
and on SIGTERM/SIGINT writes the spans it got to DUMP.json (scripts/trace-picture uses this).
"""
from __future__ import annotations

import base64
import json
import signal
import socket
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest, protocol: str) -> list[dict]:
    out = []
    for rs in request.resource_spans:
        resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "protocol": protocol,
                    "service": resource.get("service.name"),
                    "resource": resource,
                    "scope": ss.scope.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": KINDS.get(s.kind, str(s.kind)),
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "attributes": {kv.key: value(kv.value) for kv in s.attributes},
                    "status": {"code": s.status.code, "message": s.status.message},
                    "events": [e.name for e in s.events],
                })
    return out


def from_json(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    """OTLP/JSON: the protobuf JSON mapping, except that trace and span ids are hex strings
    (not base64) as the OTLP specification says."""
    doc = json.loads(body)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if span.get(k):
                        span[k] = base64.b64encode(bytes.fromhex(span[k])).decode()
    return json_format.ParseDict(doc, trace_service_pb2.ExportTraceServiceRequest(), ignore_unknown_fields=True)


class Receiver:
    """OTLP/HTTP on `http_port`, OTLP/gRPC on `grpc_port`; `spans()` is everything received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[dict] = []
        self.requests = {"http": 0, "grpc": 0}
        receiver = self

        class Http(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                kind = self.headers.get("content-type")
                if self.path != "/v1/traces" or kind not in ("application/x-protobuf", "application/json"):
                    self.send_response(415 if self.path == "/v1/traces" else 404)
                    self.end_headers()
                    return
                if kind == "application/json":
                    receiver._add(spans_of(from_json(body), "http/json"), "http")
                    reply = b"{}"
                else:
                    req = trace_service_pb2.ExportTraceServiceRequest()
                    req.ParseFromString(body)
                    receiver._add(spans_of(req, "http/protobuf"), "http")
                    reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        class Grpc(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 (the service's name)
                receiver._add(spans_of(request, "grpc"), "grpc")
                return trace_service_pb2.ExportTraceServiceResponse()

        self.http_port = free_port()
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), Http)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Grpc(), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()

    def _add(self, spans: list[dict], protocol: str) -> None:
        with self._lock:
            self._spans.extend(spans)
            self.requests[protocol] += 1

    def spans(self) -> list[dict]:
        with self._lock:
            return list(self._spans)

    def stop(self) -> None:
        self._http.shutdown()
        self._grpc.stop(grace=1)


if __name__ == "__main__":
    r = Receiver()
    print(json.dumps({"http_port": r.http_port, "grpc_port": r.grpc_port}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    r.stop()
    with open(sys.argv[1], "w") as f:
        json.dump(r.spans(), f, indent=1)
