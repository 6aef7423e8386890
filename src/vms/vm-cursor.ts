/** Opaque keyset cursor for VM listings: base64url of `<created_at ISO>|<vm_id>`. */
export function encodeVmCursor(createdAt: string, vmId: string): string {
  return Buffer.from(`${createdAt}|${vmId}`, 'utf8').toString('base64url');
}

export function decodeVmCursor(cursor: string): { created_at: Date; vm_id: string } | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const [createdAt, vmId, ...rest] = text.split('|');
  if (!createdAt || !vmId || rest.length > 0) return null;
  const date = new Date(createdAt);
  if (Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(vmId)) return null;
  // JavaScript dates reach back to year -271821, Postgres timestamps only to 4713 BC: keep to what created_at can hold.
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) return null;
  return { created_at: date, vm_id: vmId };
}
