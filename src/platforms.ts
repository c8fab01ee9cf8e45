// The platforms rbee has a binary for, named as `bun run build --target` names them, from what a machine says it is.
export const PLATFORMS = ["linux-x64", "linux-arm64", "darwin-arm64", "darwin-x64"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** This process's platform (`linux-x64` …). */
export function thisPlatform(): string {
  return `${process.platform}-${process.arch}`;
}

/** A machine's platform from `uname -sm` ("Linux aarch64", "Darwin arm64"); undefined for one rbee has no build for. */
export function platformOfUname(uname: string): Platform | undefined {
  const [system, machine] = uname.trim().split(/\s+/);
  const os = system === "Linux" ? "linux" : system === "Darwin" ? "darwin" : undefined;
  const cpu = machine === "x86_64" || machine === "amd64" ? "x64" : machine === "aarch64" || machine === "arm64" ? "arm64" : undefined;
  const platform = os && cpu ? `${os}-${cpu}` : undefined;
  return (PLATFORMS as readonly string[]).includes(platform ?? "") ? (platform as Platform) : undefined;
}
