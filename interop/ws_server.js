// Node's `ws` (npm) as the interop suite's WebSocket server, with permessage-deflate on.
//
// Usage: node interop/ws_server.js
// Listens on 127.0.0.1 on an ephemeral port and prints "listening PORT" on stdout once ready.
// Stops on SIGTERM or when stdin closes (so it never outlives the test run).
//
// Behaviour by request path (the query string is ignored unless stated):
//   /echo, /private/echo   echo every message, text as text and binary as binary
//   /fragments?size=N      echo every message as fragments of N bytes (FIN=0 ... FIN=1)
//   /close?code=C&reason=R close at once with code C and reason R
//   /headers               send one text message: a JSON object of the upgrade request's
//                          headers and the negotiated subprotocol and extensions
//   /status/N              answer the upgrade with HTTP status N (no upgrade)
// Subprotocols: the first of the client's offer that is in SUPPORTED is chosen.
"use strict";

const http = require("http");
const path = require("path");
const { WebSocketServer } = require(path.join(__dirname, "node_modules", "ws"));

const SUPPORTED = new Set(["chat.v1", "chat.v2"]);
const MAX_PAYLOAD = 32 * 1024 * 1024; // above the suite's 16 MiB echo

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: MAX_PAYLOAD,
  // threshold 0: every message is compressed once the extension is negotiated.
  perMessageDeflate: { threshold: 0 },
  handleProtocols: (protocols) => {
    for (const protocol of protocols) if (SUPPORTED.has(protocol)) return protocol;
    return false;
  },
});

function echo(ws, fragmentSize) {
  ws.on("message", (data, isBinary) => {
    if (!fragmentSize || data.length <= fragmentSize) {
      ws.send(data, { binary: isBinary });
      return;
    }
    for (let offset = 0; offset < data.length; offset += fragmentSize) {
      const end = Math.min(offset + fragmentSize, data.length);
      ws.send(data.subarray(offset, end), { binary: isBinary, fin: end === data.length });
    }
  });
}

const server = http.createServer((request, response) => {
  response.writeHead(426, { "Content-Type": "text/plain" });
  response.end("WebSocket only\n");
});

server.on("upgrade", (request, socket, head) => {
  const url = new URL(request.url, "http://localhost");
  const status = /^\/status\/(\d{3})$/.exec(url.pathname);
  if (status) {
    const body = `status ${status[1]}\n`;
    socket.end(
      `HTTP/1.1 ${status[1]} Test\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    switch (url.pathname) {
      case "/echo":
      case "/private/echo":
        echo(ws, 0);
        break;
      case "/fragments":
        echo(ws, Number(url.searchParams.get("size") || "1024"));
        break;
      case "/close":
        ws.close(Number(url.searchParams.get("code")), url.searchParams.get("reason") || "");
        break;
      case "/headers":
        ws.send(
          JSON.stringify({
            headers: request.headers,
            protocol: ws.protocol,
            extensions: ws.extensions,
          }),
        );
        break;
      default:
        ws.close(4404, `no route ${url.pathname}`);
    }
  });
});

function stop() {
  for (const client of wss.clients) client.terminate();
  server.close(() => process.exit(0));
}
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
