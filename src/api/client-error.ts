import type { Socket } from 'node:net';

/**
 * Answers requests Node's HTTP parser rejects before Express sees them (bad request line, header
 * fields over 16 KiB, …) with a problem document too, instead of a bare status line.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify({
    type: 'urn:vm-tenant:problem:invalid_request',
    title: tooLarge ? 'Request header fields too large' : 'Bad request',
    status,
    detail: tooLarge ? 'The request headers exceed the size limit.' : 'The request could not be parsed as HTTP.',
    code: 'invalid_request',
  });
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
