// Checks a 64-bit Mach-O file's embedded code signature the way macOS does when it maps pages: every page's hash in
// the CodeDirectory must match the page, and the signed range must end where the signature starts. Apple-silicon Macs
// refuse to run an arm64 binary whose (ad-hoc) signature fails this, so a build checks what it writes.
import { createHash } from "node:crypto";

const MH_MAGIC_64 = 0xfeedfacf;
const LC_CODE_SIGNATURE = 0x1d;
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CPU_TYPES: Record<number, string> = { 0x01000007: "x86_64", 0x0100000c: "arm64" };
const HASHES: Record<number, string> = { 1: "sha1", 2: "sha256" };
/** Special slots that hash another blob of the same signature (requirements, entitlements, DER entitlements). */
const BLOB_SLOTS = [2, 5, 7];

export interface SignatureCheck {
  /** "arm64" or "x86_64". */
  cpu: string;
  pages: number;
  /** The indexes of pages whose hash does not match, and other faults, each one line. */
  faults: string[];
}

/** Reads the Mach-O header and its code signature; throws for a file that is not a 64-bit Mach-O with one. */
export function checkMachOSignature(file: Uint8Array): SignatureCheck {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.byteLength < 32 || view.getUint32(0, true) !== MH_MAGIC_64) throw new Error("not a 64-bit Mach-O file");
  const cpu = CPU_TYPES[view.getUint32(4, true)] ?? `cpu type 0x${view.getUint32(4, true).toString(16)}`;
  const commands = view.getUint32(16, true);
  let at = 32;
  let signature: { offset: number; size: number } | undefined;
  for (let i = 0; i < commands; i++) {
    const cmd = view.getUint32(at, true);
    if (cmd === LC_CODE_SIGNATURE) signature = { offset: view.getUint32(at + 8, true), size: view.getUint32(at + 12, true) };
    at += view.getUint32(at + 4, true);
  }
  if (!signature) throw new Error("the file has no code signature (LC_CODE_SIGNATURE)");
  if (signature.offset + signature.size > file.byteLength) throw new Error("the code signature runs past the end of the file");
  const be = (offset: number) => view.getUint32(signature!.offset + offset, false);
  if (be(0) !== CSMAGIC_EMBEDDED_SIGNATURE) throw new Error("the code signature is not an embedded signature blob");
  const blobs = new Map<number, number>();
  for (let i = 0; i < be(8); i++) blobs.set(be(12 + 8 * i), be(16 + 8 * i));
  const cdAt = blobs.get(0);
  if (cdAt === undefined || be(cdAt) !== CSMAGIC_CODEDIRECTORY) throw new Error("the code signature has no CodeDirectory");
  const cd = (offset: number) => be(cdAt + offset);
  const hashOffset = cd(16);
  const specialSlots = cd(24);
  const codeSlots = cd(28);
  const codeLimit = cd(32);
  const hashSize = file[signature.offset + cdAt + 36]!;
  const hashName = HASHES[file[signature.offset + cdAt + 37]!];
  const pageSize = 2 ** file[signature.offset + cdAt + 39]!;
  if (!hashName) throw new Error(`unknown hash type ${file[signature.offset + cdAt + 37]} in the CodeDirectory`);
  const faults: string[] = [];
  if (codeLimit !== signature.offset) faults.push(`the signed range ends at ${codeLimit}, the signature starts at ${signature.offset}`);
  if (codeSlots !== Math.ceil(codeLimit / pageSize)) faults.push(`${codeSlots} page hashes for ${Math.ceil(codeLimit / pageSize)} pages`);
  const slotBytes = (slot: number) => {
    const start = signature!.offset + cdAt + hashOffset + slot * hashSize;
    return Buffer.from(file.subarray(start, start + hashSize));
  };
  const digest = (bytes: Uint8Array) => createHash(hashName).update(bytes).digest().subarray(0, hashSize);
  const badPages: number[] = [];
  for (let page = 0; page < codeSlots; page++) {
    const bytes = file.subarray(page * pageSize, Math.min((page + 1) * pageSize, codeLimit));
    if (!digest(bytes).equals(slotBytes(page))) badPages.push(page);
  }
  if (badPages.length) faults.push(`${badPages.length} of ${codeSlots} page hashes do not match: pages ${badPages.slice(0, 8).join(", ")}${badPages.length > 8 ? " …" : ""}`);
  for (const type of BLOB_SLOTS) {
    const blobAt = blobs.get(type);
    if (blobAt === undefined || type > specialSlots) continue;
    const blob = file.subarray(signature.offset + blobAt, signature.offset + blobAt + be(blobAt + 4));
    if (!digest(blob).equals(slotBytes(-type))) faults.push(`the hash of signature blob ${type} does not match its special slot`);
  }
  return { cpu, pages: codeSlots, faults };
}
