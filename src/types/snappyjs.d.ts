declare module 'snappyjs' {
  export function uncompress(input: Uint8Array | Buffer, maxLength?: number): Buffer
  export function compress(input: Uint8Array | Buffer): Buffer
}
