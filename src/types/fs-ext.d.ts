declare module 'fs-ext' {
  /** flock(2): 'sh' | 'ex' | 'un', with 'nb' for non-blocking. */
  export function flockSync(fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'): void;
}
