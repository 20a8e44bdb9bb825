/**
 * Classify IP address literals as public or not, for the SSRF guard (url-guard.ts). Ranges from the
 * IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and updates): anything a public
 * image host can never legitimately be is refused.
 */

/** An IPv4 range as [first octets..., prefix length] and why it is not public. */
interface Ipv4Range {
  base: [number, number, number, number];
  prefix: number;
  reason: string;
}

const IPV4_NON_PUBLIC: readonly Ipv4Range[] = [
  { base: [0, 0, 0, 0], prefix: 8, reason: '"this network" (0.0.0.0/8)' },
  { base: [10, 0, 0, 0], prefix: 8, reason: 'a private address (10.0.0.0/8)' },
  { base: [100, 64, 0, 0], prefix: 10, reason: 'a carrier-grade NAT address (100.64.0.0/10)' },
  { base: [127, 0, 0, 0], prefix: 8, reason: 'a loopback address (127.0.0.0/8)' },
  { base: [169, 254, 0, 0], prefix: 16, reason: 'a link-local address (169.254.0.0/16)' },
  { base: [172, 16, 0, 0], prefix: 12, reason: 'a private address (172.16.0.0/12)' },
  { base: [192, 0, 0, 0], prefix: 24, reason: 'an IETF protocol address (192.0.0.0/24)' },
  { base: [192, 0, 2, 0], prefix: 24, reason: 'a documentation address (192.0.2.0/24)' },
  { base: [192, 88, 99, 0], prefix: 24, reason: 'a 6to4 relay address (192.88.99.0/24)' },
  { base: [192, 168, 0, 0], prefix: 16, reason: 'a private address (192.168.0.0/16)' },
  { base: [198, 18, 0, 0], prefix: 15, reason: 'a benchmarking address (198.18.0.0/15)' },
  { base: [198, 51, 100, 0], prefix: 24, reason: 'a documentation address (198.51.100.0/24)' },
  { base: [203, 0, 113, 0], prefix: 24, reason: 'a documentation address (203.0.113.0/24)' },
  { base: [224, 0, 0, 0], prefix: 4, reason: 'a multicast address (224.0.0.0/4)' },
  { base: [240, 0, 0, 0], prefix: 4, reason: 'a reserved or broadcast address (240.0.0.0/4)' },
];

function ipv4ToNumber(octets: readonly number[]): number {
  return ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
}

/** Four octets of a dotted-decimal IPv4 literal ("203.0.113.7"), or null when `text` is not one. */
export function parseIpv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    octets.push(value);
  }
  return octets;
}

/**
 * Eight 16-bit groups of an IPv6 literal without brackets ("::1", "fe80::1", "::ffff:127.0.0.1"),
 * or null when `text` is not one. Zone ids ("%eth0") are refused (null).
 */
export function parseIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  const tail: number[] = [];
  // An embedded dotted IPv4 in the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    head = text.slice(0, lastColon);
    // "::1.2.3.4" / "1::1.2.3.4": keep the double colon the cut split.
    if (head.endsWith(':')) head += ':';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
      groups.push(parseInt(group, 16));
    }
    return groups;
  };
  const left = parse(halves[0]);
  const right = halves.length === 2 ? parse(halves[1]) : [];
  if (!left || !right) return null;
  const known = left.length + right.length + tail.length;
  if (halves.length === 1) return known === 8 ? [...left, ...tail] : null;
  if (known > 7) return null;
  return [...left, ...new Array<number>(8 - known).fill(0), ...right, ...tail];
}

/** Why an IPv4 address is not a public unicast address, or null when it is. */
export function ipv4NonPublicReason(octets: readonly number[]): string | null {
  const value = ipv4ToNumber(octets);
  for (const range of IPV4_NON_PUBLIC) {
    const mask = range.prefix === 0 ? 0 : (0xffffffff << (32 - range.prefix)) >>> 0;
    if ((value & mask) >>> 0 === (ipv4ToNumber(range.base) & mask) >>> 0) return range.reason;
  }
  return null;
}

function embeddedIpv4(groups: readonly number[], at: number): number[] {
  return [groups[at] >> 8, groups[at] & 0xff, groups[at + 1] >> 8, groups[at + 1] & 0xff];
}

/**
 * Why an IPv6 address is not a public unicast address, or null when it is. Addresses that embed an
 * IPv4 address (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that
 * IPv4 address; everything outside global unicast 2000::/3 is refused, as are the special blocks
 * inside it (Teredo and IETF 2001::/23, documentation 2001:db8::/32).
 */
export function ipv6NonPublicReason(groups: readonly number[]): string | null {
  const allZeroUpTo = (n: number) => groups.slice(0, n).every((g) => g === 0);
  if (allZeroUpTo(7) && groups[7] === 0) return 'the unspecified address (::)';
  if (allZeroUpTo(7) && groups[7] === 1) return 'a loopback address (::1)';
  if (allZeroUpTo(5) && groups[5] === 0xffff) {
    const reason = ipv4NonPublicReason(embeddedIpv4(groups, 6));
    return reason ? `an IPv4-mapped address of ${reason}` : null;
  }
  if (allZeroUpTo(6)) return 'an IPv4-compatible address (::/96, deprecated)';
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)) {
    const reason = ipv4NonPublicReason(embeddedIpv4(groups, 6));
    return reason ? `a NAT64 address of ${reason}` : null;
  }
  if (groups[0] === 0x2002) {
    const reason = ipv4NonPublicReason(embeddedIpv4(groups, 1));
    return reason ? `a 6to4 address of ${reason}` : null;
  }
  if ((groups[0] & 0xfe00) === 0xfc00) return 'a unique-local address (fc00::/7)';
  if ((groups[0] & 0xffc0) === 0xfe80) return 'a link-local address (fe80::/10)';
  if ((groups[0] & 0xffc0) === 0xfec0) return 'a site-local address (fec0::/10)';
  if ((groups[0] & 0xff00) === 0xff00) return 'a multicast address (ff00::/8)';
  if ((groups[0] & 0xe000) !== 0x2000) return 'a reserved address (outside 2000::/3)';
  if (groups[0] === 0x2001 && groups[1] < 0x0200) return 'an IETF special-purpose address (2001::/23, Teredo included)';
  if (groups[0] === 0x2001 && groups[1] === 0x0db8) return 'a documentation address (2001:db8::/32)';
  return null;
}

/**
 * For a URL hostname as the WHATWG URL parser leaves it (IPv4 normalised to dotted decimal, IPv6 in
 * brackets): why it is an IP literal that is not public, null for a public IP literal, or undefined
 * when the hostname is not an IP literal at all (a DNS name).
 */
export function ipLiteralNonPublicReason(hostname: string): string | null | undefined {
  if (hostname.startsWith('[') && hostname.endsWith(']')) {
    const groups = parseIpv6(hostname.slice(1, -1));
    return groups ? ipv6NonPublicReason(groups) : 'an IPv6 literal that cannot be parsed';
  }
  const octets = parseIpv4(hostname);
  if (octets) return ipv4NonPublicReason(octets);
  return undefined;
}
