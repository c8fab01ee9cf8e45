// A bounded soak of a real queen on loopback, printed as JSON (scripts/lib/soak-queen.ts; figures in docs/reliability.md):
//   bun scripts/soak.ts [--seconds 120] [--clients 8]
import { parseArgs } from "node:util";
import { soakFreshQueen } from "./lib/soak-queen";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "120" }, clients: { type: "string", default: "8" } } });
console.log(JSON.stringify(await soakFreshQueen({ seconds: Number(values.seconds), clients: Number(values.clients) }), null, 2));
