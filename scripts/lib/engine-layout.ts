// An engine (node-llama-cpp prebuilt) of another version than node-llama-cpp's own goes into the runtime archive as its
// bins/FOLDER folders laid at node-llama-cpp/bins/FOLDER: node-llama-cpp's JavaScript looks there first and checks no
// version, where it would ignore a prebuilt package of another version. Each folder needs the addon and its build
// metadata, or node-llama-cpp passes it by.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BuildError } from "./build-error";

/** tar's --transform expressions that lay each prebuilt package's bins/ there; throws for a folder it would not take. */
export function engineLayout(prebuiltRoot: string, prebuiltDirs: string[], engine: string): string[] {
  return prebuiltDirs.map((dir) => {
    const bins = join(prebuiltRoot, dir, "bins");
    const folders = existsSync(bins) ? readdirSync(bins) : [];
    if (!folders.length) throw new BuildError(`${dir}@${engine} has no bins/ folder: it is not a node-llama-cpp prebuilt`);
    for (const folder of folders)
      for (const file of ["llama-addon.node", "_nlcBuildMetadata.json"])
        if (!existsSync(join(bins, folder, file))) throw new BuildError(`${dir}@${engine}: bins/${folder} has no ${file}, so node-llama-cpp would not take it as an engine`);
    return `--transform=s,^${dir}/bins/,node_modules/node-llama-cpp/bins/,`;
  });
}
