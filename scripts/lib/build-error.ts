/** One line for the person building rbee: what is wrong and what to do; the build stops with it. */
export class BuildError extends Error {}
