import ArgumentParser
import Foundation
import TailorKernels
import TailorModels

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed: model prefill and decode (default), embeddings, or the machine's memory bandwidth.",
        subcommands: [BenchModel.self, BenchMemory.self, BenchMatvec.self, BenchGEMM.self, BenchQGEMM.self, BenchPeak.self, BenchEmbed.self, BenchSearch.self, BenchTune.self, BenchTuneClassifier.self],
        defaultSubcommand: BenchModel.self)
}

struct BenchModel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "model",
        abstract: "Prefill and decode tokens/s, like llama-bench (release builds only give meaningful figures).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.short, .customLong("n-prompt")], help: "Prompt tokens for the prefill test, or several lengths comma-separated (e.g. 512,1536; 0 skips it).")
    var prompt: String = "512"
    /// The first prompt length (and the one the parallel test uses when given).
    var p: Int { lengths.first ?? 0 }
    var lengths: [Int] { prompt.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    @Option(name: [.short, .customLong("n-gen")], help: "Tokens for the decode test (0 skips it).")
    var n: Int = 128
    @Option(name: [.short, .customLong("repetitions")], help: "Repetitions after a warm-up.")
    var r: Int = 5
    @Option(help: ArgumentHelp("Concurrent sequences to decode together, comma-separated (e.g. 1,4,16,64): aggregate decode tokens/s of that many requests, each a 64-token prompt then 128 greedy tokens (-p and -n change them).", valueName: "N,N,..."))
    var parallel: String?
    @Flag(help: "Print JSON for scripts.")
    var json = false

    func validate() throws {
        let ls = prompt.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ls.isEmpty, ls.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw ValidationError("-p: prompt lengths, comma-separated (e.g. 512 or 512,1536); got '\(prompt)'") }
        guard n >= 0, p + n > 0 else { throw ValidationError("give -p or -n greater than 0") }
        guard r >= 1 else { throw ValidationError("-r must be at least 1") }
        if parallel != nil { _ = try widths() }
    }

    func widths() throws -> [Int] {
        guard let parallel else { return [] }
        let w = parallel.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !w.isEmpty, w.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 4096 }) else {
            throw ValidationError("--parallel: give sequence counts from 1 to 4096, comma-separated (e.g. 1,4,16,64); got '\(parallel)'")
        }
        return w.map { $0! }
    }

    func run() async throws {
        let loadStart = Date()
        let lm = try loadModel(modelOptions)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        if parallel != nil { try runParallel(lm); return }
        var result = try runReportingErrors {
            try DecoderBenchmark.run(lm, promptLengths: lengths, generatedTokens: n, repetitions: r) { note("bench: \($0)") }
        }
        result.loadSeconds = loadSeconds
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
        for x in result.prefillByLength {
            print(String(format: "| %@ | %@ | %d | pp%d | %.1f ± %.1f |", lm.name, size, result.threads, x.tokens, x.tokensPerSecond.mean, x.tokensPerSecond.stddev))
        }
        if let macs = result.matrixMACsPerToken, let first = result.prefillByLength.first {
            print(String(format: "prefill multiply-adds of the weight matrices: %.1f GMAC/s at pp%d (%@ per token; `tailor bench peak` gives the machine's int8 peak)",
                         Double(macs) * first.tokensPerSecond.median / 1e9, first.tokens, formatCount(macs)))
        }
        if n > 0 {
            print(String(format: "| %@ | %@ | %d | tg%d | %.1f ± %.1f |", lm.name, size, result.threads, n, result.decode.mean, result.decode.stddev))
            print(String(format: "decode reads %@ of weights per token: %.1f GB/s achieved", formatBytes(Int64(result.bytesPerToken)), result.decodeGBps))
        }
        print("peak resident memory: \(formatBytes(Int64(result.peakResidentBytes))); model loaded in \(String(format: "%.2f", loadSeconds)) s")
    }

    /// `--parallel`: continuous batching at several widths.
    func runParallel(_ lm: LanguageModel) throws {
        // -p and -n keep llama-bench's defaults for the single-sequence test; here the issue's
        // workload is 64 prompt tokens and 128 generated unless they are given.
        let args = CommandLine.arguments
        let prompt = args.contains("-p") || args.contains("--n-prompt") ? p : 64
        let gen = args.contains("-n") || args.contains("--n-gen") ? n : 128
        let results = try runReportingErrors {
            try DecoderBenchmark.parallel(lm, widths: try widths(), promptTokens: prompt, generatedTokens: gen, repetitions: r) { note("bench: \($0)") }
        }
        if json {
            struct Out: Encodable {
                var model: String; var threads: Int; var precision: String; var promptTokens: Int; var generatedTokens: Int
                var parallel: [ParallelBenchResult]
                enum CodingKeys: String, CodingKey { case model, threads, precision, parallel, promptTokens = "prompt_tokens", generatedTokens = "generated_tokens" }
            }
            emit(try jsonString(Out(model: lm.name, threads: lm.model.pool.threads, precision: lm.precision.rawValue,
                                    promptTokens: prompt, generatedTokens: gen, parallel: results)) + "\n")
            return
        }
        print("| model | threads | sequences | decode t/s (all) | ms/token p50 | p95 | prefill t/s | KV per sequence |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for x in results {
            print(String(format: "| %@ | %d | %d | %.1f | %.2f | %.2f | %.1f | %@ |", lm.name, lm.model.pool.threads, x.sequences,
                         x.decodeTokensPerSecond, x.msPerTokenP50, x.msPerTokenP95, x.prefillTokensPerSecond, formatBytes(Int64(x.kvBytesPerSequence))))
        }
        print("peak resident memory: \(formatBytes(Int64(results.map(\.peakResidentBytes).max() ?? 0)))")
    }
}

struct BenchMemory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "memory", abstract: "Measure memory read bandwidth.",
        discussion: """
        Sums a buffer of --mib MiB, split across the threads, and reports the median pass. The default \
        1 GiB is far larger than any cache: the DRAM bandwidth, the limit for decoding a model that does \
        not fit in the caches. A smaller buffer (e.g. a model's size) shows how much a large L3 serves.
        """)
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Option(help: "Buffer size in MiB.") var mib: Int = 1024
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard (1...65536).contains(mib) else { throw ValidationError("--mib must be from 1 to 65536 (got \(mib))") }
    }

    func run() async throws {
        // At least ~7 GiB read in all, so small buffers still time a long enough run.
        let passes = min(1000, max(7, 7 * 1024 / mib))
        let (median, samples) = MemoryBandwidth.measure(bytes: mib << 20, repetitions: passes, pool: ThreadPool.shared(threads: threads))
        if json {
            print("{\"read_gbps\": \(median / 1e9), \"samples_gbps\": [\(samples.map { String($0 / 1e9) }.joined(separator: ", "))], \"threads\": \(threads), \"mib\": \(mib)}")
        } else {
            print(String(format: "memory read bandwidth: %.1f GB/s (median of %d passes over %d MiB, %d threads)", median / 1e9, samples.count, mib, threads))
        }
    }
}

struct BenchMatvec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "matvec",
        abstract: "Decoding kernels alone: one matrix-vector product per quantization type, from cache and from memory.")
    @Option(help: "Types, comma-separated.") var types: String = "q4_0,q4_1,q5_0,q8_0,q4_K,q6_K"
    @Option(help: "Rows of the matrix.") var rows: Int = 576
    @Option(help: "Columns of the matrix (the input width; a multiple of 256 for K-quants).") var cols: Int = 1536
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Option(name: .short, help: "Repetitions.") var r: Int = 5
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard rows >= 1, cols >= 1 else { throw ValidationError("--rows and --cols must be at least 1 (got \(rows) × \(cols))") }
        guard r >= 1 else { throw ValidationError("-r must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        let pool = ThreadPool.shared(threads: threads)
        var results: [KernelBenchmark.Result] = []
        if !json { print("| type | matrix | from | GB/s | ns per block-row per thread |\n| --- | --- | --- | ---: | ---: |") }
        for name in types.split(separator: ",") {
            guard let type = GGMLType.allCases.first(where: { $0.description.lowercased() == name.lowercased() }),
                  Quantizer.supported.contains(type) else {
                throw ValidationError("unknown type \(name): use \(Quantizer.supported.map(\.description).joined(separator: ", "))")
            }
            guard cols % type.blockSize == 0 else { throw ValidationError("--cols \(cols) is not a multiple of \(type)'s block of \(type.blockSize)") }
            let bytes = rows * (cols / type.blockSize) * type.blockBytes
            let copies = max(1, (256 << 20) / max(1, bytes))
            for (from, n) in [("cache", 1), ("memory", copies)] {
                let res = KernelBenchmark.matvec(type: type, rows: rows, cols: cols, copies: n, calls: max(200, 2 * n), repetitions: r, pool: pool)
                results.append(res)
                if !json { print(String(format: "| %@ | %d×%d | %@ | %.1f | %.2f |", res.type, rows, cols, from, res.gbPerSecond, res.nanosecondsPerBlockRow)) }
            }
        }
        if json {
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}

struct BenchGEMM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm",
        abstract: "The encoder's matrix products alone, one thread: fp32 (OpenBLAS sgemm) and, where the CPU has AVX512-FP16, fp16.")
    @Option(help: "Shapes M×N×K, comma-separated (default: a 1024-token batch through all-MiniLM-L6-v2's layers).")
    var shapes: String = "1024x1152x384,1024x384x384,1024x1536x384,1024x384x1536"
    @Option(name: .short, help: "Repetitions.") var r: Int = 5
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var results: [KernelBenchmark.GEMMResult] = []
        if !json { print("| M×N×K | precision | GFLOP/s |\n| --- | --- | ---: |") }
        for spec in shapes.split(separator: ",") {
            let d = spec.lowercased().split(separator: "x").compactMap { Int($0) }
            guard d.count == 3, d.allSatisfy({ $0 > 0 }) else { throw ValidationError("bad shape \(spec): write M×N×K as e.g. 1024x384x1536") }
            for half in HalfGEMM.isAvailable ? [false, true] : [false] {
                let res = KernelBenchmark.gemm(m: d[0], n: d[1], k: d[2], half: half, repetitions: r)
                results.append(res)
                if !json { print(String(format: "| %d×%d×%d | %@ | %.1f |", d[0], d[1], d[2], res.precision, res.gflops)) }
            }
        }
        if json {
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}

struct BenchQGEMM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "qgemm",
        abstract: "The packed integer products of batched decoding and prefill alone, one thread: int8 multiply-adds per second by type and token count.")
    @Option(help: "Types, comma-separated.") var types: String = "q4_0,q4_1,q8_0"
    @Option(help: "Rows of the matrix.") var rows: Int = 1536
    @Option(help: "Columns (the input width: a multiple of 32, of 256 for K-quants).") var cols: Int = 576
    @Option(help: "Token counts, comma-separated.") var tokens: String = "1,4,16,64,512"
    @Option(name: .short, help: "Repetitions.") var r: Int = 5
    @Option(help: "Kernels, comma-separated (reference, avx2, avx512-vnni, amx-int8), 'all' for every one this machine has, or 'auto' for the one used at each token count.")
    var kernels: String = "auto"
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let named = kernels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        for k in named where !["auto", "all"].contains(k) && PackedGEMM.Kernel(rawValue: k) == nil {
            throw ValidationError("--kernels: '\(k)' is not a kernel (reference, avx2, avx512-vnni, amx-int8, all, auto)")
        }
        guard cols % 32 == 0, rows > 0 else { throw ValidationError("--cols must be a multiple of 32 and --rows positive") }
        let counts = tokens.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--tokens: positive counts, comma-separated") }
        var results: [KernelBenchmark.PackedResult] = []
        let peak = KernelBenchmark.peak()
        if !json {
            for p in peak { print(String(format: "int8 peak, one thread, %@: %.1f GMAC/s", p.unit, p.gmacs)) }
            print("| type | rows×cols | tokens | kernel | GMAC/s | % of peak |\n| --- | --- | ---: | --- | ---: | ---: |")
        }
        for name in types.split(separator: ",") {
            guard let t = GGMLType.allCases.first(where: { $0.description.lowercased() == name.lowercased() }), PackedWeights.supports(t) else {
                throw ValidationError("--types: '\(name)' has no packed kernel (q4_0, q4_1, q5_0, q8_0, q4_k, q5_k, q6_k)")
            }
            guard cols % t.blockSize == 0 else { throw ValidationError("--cols \(cols) is not a whole number of \(t) blocks (\(t.blockSize) values): use e.g. --cols 1536") }
            let choices: [PackedGEMM.Kernel?] = named.contains("all") ? PackedGEMM.kernels(for: t)
                : named.contains("auto") ? [nil] : named.compactMap { PackedGEMM.Kernel(rawValue: $0) }
            for k in choices.compactMap({ $0 }) where !k.available(for: t) {
                throw ValidationError("--kernels: \(k.rawValue) does not run on this machine for \(t) (it has: \(PackedGEMM.kernels(for: t).map(\.rawValue).joined(separator: ", ")))")
            }
            for n in counts {
              for k in choices {
                let res = KernelBenchmark.packed(type: t, rows: rows, cols: cols, tokens: n, repetitions: r, kernel: k)
                results.append(res)
                let unitPeak = peak.last(where: { res.kernel.hasPrefix("amx") ? $0.unit.hasPrefix("amx") : !$0.unit.hasPrefix("amx") })?.gmacs ?? 0
                if !json { print(String(format: "| %@ | %d×%d | %d | %@ | %.1f | %.0f%% |", res.type, rows, cols, n, res.kernel, res.gmacs, unitPeak > 0 ? 100 * res.gmacs / unitPeak : 0)) }
              }
            }
        }
        if json {
            struct Out: Encodable { var peak: [KernelBenchmark.PeakResult]; var products: [KernelBenchmark.PackedResult] }
            emit(try jsonString(Out(peak: peak, products: results)) + "\n")
        }
    }
}

struct BenchPeak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "peak",
        abstract: "The int8 multiply-add peak of one core (VNNI dot products, AMX tiles where present), to read the other figures against.")
    @Flag(help: "Print JSON.") var json = false
    func run() async throws {
        let peak = KernelBenchmark.peak()
        if json { emit(try jsonString(peak) + "\n"); return }
        for p in peak { print(String(format: "%@: %.1f GMAC/s per core", p.unit, p.gmacs)) }
    }
}

struct BenchEmbed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embed",
        abstract: "Sentences/s of the embedding model (texts from --input, one per line, else a built-in generated set).")
    @Option(name: [.short, .long], help: "Embedding model (default: all-MiniLM-L6-v2).") var model: String?
    @Option(name: [.short, .long], help: "Texts, one per line.") var input: String?
    @Option(name: .short, help: "How many texts.") var n: Int = 2000
    @Option(help: "Texts per batch.") var batch: Int = 32
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Option(name: .short, help: "Repetitions.") var r: Int = 3
    @Option(help: "Arithmetic of the linear layers: fp16 (CPUs with AVX512-FP16; the default there) or fp32.")
    var precision: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let precision, EncoderPrecision(rawValue: precision.lowercased()) == nil {
            throw ValidationError("--precision \(precision): use fp16 or fp32")
        }
        if precision?.lowercased() == "fp16" && !EncoderPrecision.fp16Available {
            throw ValidationError("--precision fp16 needs a CPU with AVX512-FP16 (this build has none); use fp32")
        }
    }

    func run() async throws {
        var texts: [String]
        if let input {
            guard let s = try? String(contentsOfFile: input, encoding: .utf8) else { note("error: cannot read \(input)"); throw ExitCode.failure }
            texts = s.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        } else {
            texts = BenchEmbed.generated(n)
        }
        texts = Array(texts.prefix(n))
        let chosen = try precision.map { p -> EncoderPrecision in
            guard let v = EncoderPrecision(rawValue: p.lowercased()) else { throw ValidationError("--precision: fp16 or fp32 (got '\(p)')") }
            return v
        } ?? .preferred
        let e = try runReportingErrors { try SentenceEmbedder(model, threads: threads, precision: chosen) }
        e.batchSize = batch
        _ = try runReportingErrors { try e.embed(Array(texts.prefix(64))) }  // warm-up
        var rates: [Double] = []
        for _ in 0..<r {
            let t0 = Date()
            _ = try runReportingErrors { try e.embed(texts) }
            rates.append(Double(texts.count) / Date().timeIntervalSince(t0))
        }
        let st = BenchStat(samples: rates)
        if json {
            print("{\"sentences\": \(texts.count), \"batch\": \(batch), \"threads\": \(threads), \"precision\": \"\(e.encoder.precision)\", \"sentences_per_s\": [\(rates.map { String($0) }.joined(separator: ", "))], \"median\": \(st.median)}")
        } else {
            print(String(format: "%@: %d texts, batch %d, %d threads, %@ products: %.1f ± %.1f sentences/s", e.name, texts.count, batch, threads,
                         e.encoder.precision.rawValue, st.mean, st.stddev))
        }
    }

    /// Deterministic English-like sentences of 30–60 words.
    static func generated(_ n: Int) -> [String] {
        let words = "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will can more about said up out them some could what into only other time like then these two may first any new very my also after our over did just now years people made most such where through back much before good well should because each those down how state work world life year between own way even came under same might last while day great around here something both take still high found power against water three another long however without number few again part small since several place".split(separator: " ").map(String.init)
        var rng = SplitMix64(seed: 42)
        return (0..<n).map { _ in
            let len = 30 + Int(rng.next() % 31)
            return (0..<len).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ") + "."
        }
    }
}

