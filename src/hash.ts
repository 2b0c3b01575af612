/** FNV-1a over a string's UTF-16 code units from `seed`; never 0 (0 marks an empty slot). */
export function fnv1a(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  h >>>= 0;
  return h === 0 ? 1 : h;
}
