// The version every role reports; read from package.json at build time so the compiled binary carries it.
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
