// One status line on stderr for the stages a person waits on (starting, downloading, loading): shown and replaced on
// a terminal, silent otherwise, and always cleared before tokens reach stdout.
export function stageLine(stream: NodeJS.WriteStream) {
  let shown = false;
  return {
    stage(text: string) {
      if (!stream.isTTY) return;
      stream.write(`\r\x1b[2K${text}…`);
      shown = true;
    },
    clear() {
      if (!shown) return;
      stream.write("\r\x1b[2K");
      shown = false;
    },
  };
}
