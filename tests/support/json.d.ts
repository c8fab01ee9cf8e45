// Tests read many JSON bodies whose shape they then assert; let them index those without casts.
declare global {
  interface Body {
    json(): Promise<any>;
  }
  interface Response {
    json(): Promise<any>;
  }
}
export {};
