// The part of autocannon 8's API the benchmarks use (it ships no types).
declare module 'autocannon' {
  interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    total: number
    p50: number
    p90: number
    p99: number
  }
  interface Result {
    requests: Histogram
    latency: Histogram
    throughput: Histogram
    duration: number
    errors: number
    timeouts: number
    non2xx: number
  }
  interface Options {
    url: string
    connections?: number
    pipelining?: number
    duration?: number
    method?: string
    headers?: Record<string, string>
  }
  function autocannon(options: Options): Promise<Result> & { stop(): void }
  export default autocannon
}
