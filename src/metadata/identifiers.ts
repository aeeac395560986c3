import { InvalidArgumentError } from '../errdefs/index.js';

/** containerd's identifier rule, for namespaces, leases and container ids: at most 76 characters. */
const identifierRe = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
export const maxIdentifierLength = 76;

/** @throws InvalidArgumentError naming the kind of identifier and the rule */
export function validateIdentifier(s: string, kind: string): string {
  if (typeof s !== 'string' || s.length === 0) throw new InvalidArgumentError(`invalid ${kind}: empty`);
  if (s.length > maxIdentifierLength) {
    throw new InvalidArgumentError(`invalid ${kind} "${s.slice(0, 40)}...": longer than ${maxIdentifierLength} characters`);
  }
  if (!identifierRe.test(s)) {
    throw new InvalidArgumentError(`invalid ${kind} ${JSON.stringify(s)}: use letters and digits, separated by single ".", "_" or "-"`);
  }
  return s;
}

/** Checks label keys and values as containerd does: keys up to 4096 bytes with their values. */
export function validateLabels(labels: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(labels)) {
    if (k.length === 0) throw new InvalidArgumentError('invalid label: empty key');
    if (typeof v !== 'string') throw new InvalidArgumentError(`invalid label "${k}": value must be a string`);
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > 4096) {
      throw new InvalidArgumentError(`invalid label "${k.slice(0, 40)}": key and value longer than 4096 bytes`);
    }
  }
  return labels;
}

/** Applies label changes: a key with an empty value is removed. */
export function mergeLabels(current: Record<string, string>, changes: Record<string, string>): Record<string, string> {
  const out = { ...current };
  for (const [k, v] of Object.entries(validateLabels(changes))) {
    if (v === '') delete out[k];
    else out[k] = v;
  }
  return out;
}
