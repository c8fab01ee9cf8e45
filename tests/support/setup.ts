// Preloaded before every test file (bunfig.toml): tests start real processes and load a real model.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);
