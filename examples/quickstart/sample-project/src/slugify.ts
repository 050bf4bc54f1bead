/** Turns a title into a URL slug: lower case, ASCII letters and digits, single dashes. */
export function slugify(title: string, maxLength = 64): string {
  const slug = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // strip the accents NFKD split off
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  // Cut at a dash when possible so no word is chopped in half.
  if (slug.length <= maxLength) return slug;
  const cut = slug.lastIndexOf('-', maxLength);
  return slug.slice(0, cut > 0 ? cut : maxLength);
}

/** Makes `slug` unique among `taken` by appending -2, -3, ... */
export function uniqueSlug(slug: string, taken: ReadonlySet<string>): string {
  if (!taken.has(slug)) return slug;
  for (let n = 2; ; n++) {
    const candidate = `${slug}-${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}
