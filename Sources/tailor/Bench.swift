import ArgumentParser
import Foundation
import TailorKernels
import TailorModels

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed: model prefill and decode (default), or the machine's memory bandwidth.",
        subcommands: [BenchModel.self, BenchMemory.self],
        defaultSubcommand: BenchModel.self)
}

struct BenchModel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "model",
        abstract: "Prefill and decode tokens/s, like llama-bench (release builds only give meaningful figures).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.short, .customLong("n-prompt")], help: "Prompt tokens for the prefill test (0 skips it).")
    var p: Int = 512
    @Option(name: [.short, .customLong("n-gen")], help: "Tokens for the decode test (0 skips it).")
    var n: Int = 128
    @Option(name: [.short, .customLong("repetitions")], help: "Repetitions after a warm-up.")
    var r: Int = 5
    @Flag(help: "Print JSON for scripts.")
    var json = false

    func validate() throws {
        guard p >= 0, n >= 0, p + n > 0 else { throw ValidationError("give -p or -n greater than 0") }
        guard r >= 1 else { throw ValidationError("-r must be at least 1") }
    }

    func run() async throws {
        let lm = try loadModel(modelOptions)
        let result = try runReportingErrors {
            try DecoderBenchmark.run(lm, promptTokens: p, generatedTokens: n, repetitions: r) { note("bench: \($0)") }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            var obj = try JSONSerialization.jsonObject(with: enc.encode(result)) as! [String: Any]
            obj["prefill_tps_mean"] = result.prefill.mean; obj["prefill_tps_stddev"] = result.prefill.stddev
            obj["decode_tps_mean"] = result.decode.mean; obj["decode_tps_stddev"] = result.decode.stddev
            obj["decode_gbps"] = result.decodeGBps
            obj["openblas_coretype"] = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? ""
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
            return
        }
        let size = formatBytes(Int64(lm.file.file.size))
        print("| model | size | threads | test | t/s |")
        print("| --- | ---: | ---: | --- | ---: |")
        if p > 0 {
            print(String(format: "| %@ | %@ | %d | pp%d | %.1f ± %.1f |", lm.name, size, result.threads, p, result.prefill.mean, result.prefill.stddev))
        }
        if n > 0 {
            print(String(format: "| %@ | %@ | %d | tg%d | %.1f ± %.1f |", lm.name, size, result.threads, n, result.decode.mean, result.decode.stddev))
            print(String(format: "decode reads %@ of weights per token: %.1f GB/s achieved", formatBytes(Int64(result.bytesPerToken)), result.decodeGBps))
        }
        print("peak resident memory: \(formatBytes(Int64(result.peakResidentBytes)))")
    }
}

struct BenchMemory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "memory", abstract: "Measure memory read bandwidth.")
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let (median, samples) = MemoryBandwidth.measure(pool: ThreadPool(threads: threads))
        if json {
            print("{\"read_gbps\": \(median / 1e9), \"samples_gbps\": [\(samples.map { String($0 / 1e9) }.joined(separator: ", "))], \"threads\": \(threads)}")
        } else {
            print(String(format: "memory read bandwidth: %.1f GB/s (median of %d passes over 1 GiB, %d threads)", median / 1e9, samples.count, threads))
        }
    }
}
