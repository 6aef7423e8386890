/**
 * The part of structured-headers (RFC 8941/9651 parser, a dependency of http-message-signatures)
 * this code uses. The package ships its CommonJS types only behind "exports", which this project's
 * `moduleResolution: node` does not read, so TypeScript needs them declared here.
 */
declare module 'structured-headers' {
  export type BareItem = number | string | boolean | ArrayBuffer | Date | { toString(): string };
  export type Parameters = Map<string, BareItem>;
  export type Item = [BareItem, Parameters];
  export type InnerList = [Item[], Parameters];
  export function parseDictionary(input: string): Map<string, Item | InnerList>;
}
