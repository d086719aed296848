/** A trivial piscina task for tests: doubles its argument. */
export default function double(x: number): number {
  return x * 2;
}
