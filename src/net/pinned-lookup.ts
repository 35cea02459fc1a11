import { isIP, type LookupFunction } from 'node:net';

/** A lookup that answers with the address the outbound policy approved, so a second DNS answer cannot swap it. */
export function pinnedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return (_hostname, options, callback) => {
    if (options.all) (callback as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}
