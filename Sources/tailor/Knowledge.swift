import ArgumentParser
import Foundation
import Synchronization
import TailorKernels
import TailorModels
import TailorRAG

/// Set by the first Ctrl-C; long commands stop at the next safe point. A second Ctrl-C quits.
let stopRequested = Atomic<Bool>(false)

func installInterruptHandler() {
    signal(SIGINT) { _ in
        if stopRequested.load(ordering: .relaxed) { _exit(130) }
        stopRequested.store(true, ordering: .relaxed)
        let msg = "\ninterrupted: finishing the current batch (Ctrl-C again to quit now)\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
    }
}

let stderrIsTTY = isatty(2) == 1

/// One-line progress on a terminal (rewritten in place); occasional lines otherwise.
final class ProgressLine {
    var last = Date.distantPast
    var shown = false
    func update(_ s: String, force: Bool = false) {
        let now = Date()
        if stderrIsTTY {
            guard force || now.timeIntervalSince(last) > 0.1 else { return }
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + s).utf8)); shown = true
        } else {
            guard force || now.timeIntervalSince(last) > 10 else { return }
            note(s)
        }
        last = now
    }
    func finish() { if shown && stderrIsTTY { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }; shown = false }
}

func formatDuration(_ s: Double) -> String {
    if s < 60 { return String(format: "%.0f s", s) }
    if s < 3600 { return String(format: "%d min %02d s", Int(s) / 60, Int(s) % 60) }
    return String(format: "%d h %02d min", Int(s) / 3600, (Int(s) % 3600) / 60)
}

/// A path for display: relative to the working directory when under it.
func displayPath(_ p: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    return p.hasPrefix(cwd + "/") ? String(p.dropFirst(cwd.count + 1)) : p
}

/// The embedder for a collection: the one asked for, else the one that built it, else the default.
func embedderFor(_ store: (any CollectionStore)?, model: String?, threads: Int) throws -> SentenceEmbedder {
    try KnowledgeBase.embedderFor(store, model: model, threads: threads)
}

struct CollectionOption: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "Collection: a name (stored under $TAILOR_HOME/collections, or in --store) or a folder path. Default: \(Collections.defaultName).")
    var collection: String?
    @OptionGroup var store: StoreOption
}

/// Where collections are kept: --store, else TAILOR_STORE, else $TAILOR_HOME/collections.
struct StoreOption: ParsableArguments {
    @Option(name: .customLong("store"), help: "Where collections are kept: a folder, or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (PostgreSQL with pgvector). Default: $TAILOR_STORE, else $TAILOR_HOME/collections.")
    var spec: String?

    func validate() throws { _ = try location() }

    func location() throws -> StoreLocation {
        do { return try StoreLocation.parse(spec) } catch { throw ValidationError("\(error)") }
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add files and folders to a collection (only new and changed files are embedded).",
        discussion: """
            Reads .txt .md .html .pdf .docx .csv .tsv .json .jsonl; folders recurse (hidden files skipped).
            Files removed from an ingested folder are removed from the collection. Ctrl-C stops after the
            current batch; run the same command again to finish.
            """)

    @Argument(help: "Files and folders to ingest.") var paths: [String]
    @OptionGroup var target: CollectionOption
    @Option(name: [.short, .long], help: "Embedding model (default: the collection's, else all-MiniLM-L6-v2).") var model: String?
    @Option(help: "Only files matching this glob (relative path or file name; repeatable).") var include: [String] = []
    @Option(help: "Skip files matching this glob (repeatable).") var exclude: [String] = []
    @Option(name: .customLong("chunk-tokens"), help: "Most tokens per chunk (default: 256, or the embedder's limit).") var chunkTokens: Int?
    @Option(help: "Tokens of overlap between consecutive chunks of a section.") var overlap: Int = 32
    @Option(name: .customLong("text-field"), help: "JSON/JSONL: the field holding the text (default: text, content, body, …).") var textField: String?
    @Option(name: .customLong("id-field"), help: "JSON/JSONL: the field holding a record's id (default: _id, id, …).") var idField: String?
    @Flag(help: "Keep running and ingest changes as files are added, edited or deleted.") var watch = false
    @Option(help: "Seconds between checks with --watch.") var interval: Double = 2
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(help: "Exit with an error when any file could not be read.") var strict = false

    func validate() throws {
        if let c = chunkTokens, c < 16 { throw ValidationError("--chunk-tokens must be at least 16") }
        guard overlap >= 0 else { throw ValidationError("--overlap must be 0 or more") }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    func run() async throws {
        installInterruptHandler()
        let kb = try runReportingErrors { try KnowledgeBase.open(target.collection, store: try target.store.location(), embedder: model, create: true, threads: threads) }
        let store = kb.store
        var opts = IngestOptions()
        opts.include = include; opts.exclude = exclude
        opts.loader = LoaderOptions(textField: textField, idField: idField)
        var failedAny = false
        repeat {
            let line = ProgressLine()
            let summary = try runReportingErrors {
                try kb.ingest(paths, options: opts, chunkTokens: chunkTokens, overlap: overlap,
                              shouldStop: { stopRequested.load(ordering: .relaxed) }) { p in
                    switch p.phase {
                    case .scanning: line.update("scanning…", force: true)
                    case .reading: line.update("reading files \(p.filesDone)/\(p.filesTotal)")
                    case .embedding:
                        var s = String(format: "embedding: %d/%d files, %d/%d chunks, %.1f chunks/s", p.filesDone, p.filesTotal, p.chunksDone, p.chunksTotal, p.chunksPerSecond)
                        if let eta = p.eta { s += ", ETA " + formatDuration(eta) }
                        line.update(s)
                    case .done: line.finish()
                    }
                }
            }
            line.finish()
            failedAny = failedAny || !summary.failed.isEmpty
            let changed = summary.filesAdded + summary.filesUpdated + summary.filesRemoved + summary.failed.count > 0
            if json { emit(try jsonString(IngestReport(collection: store.name, summary: summary, stats: try store.stats())) + "\n") }
            else if !watch || changed || summary.interrupted { printSummary(summary, store: store) }
            if summary.interrupted {
                note("Stopped early; run the same command again to finish (nothing is duplicated).")
                // Ctrl-C is how --watch ends: cleanly, even when it comes during a pass.
                if watch { break }
                throw ExitCode(130)
            }
            if watch {
                let until = Date().addingTimeInterval(interval)
                while Date() < until && !stopRequested.load(ordering: .relaxed) { try await Task.sleep(nanoseconds: 100_000_000) }
                if stopRequested.load(ordering: .relaxed) { break }
            }
        } while watch
        if strict && failedAny { throw ExitCode.failure }
    }

    struct IngestReport: Codable { var collection: String; var summary: IngestSummary; var stats: CollectionStats }

    func printSummary(_ s: IngestSummary, store: any CollectionStore) {
        let stats = try? store.stats()
        var lines: [String] = []
        lines.append("Collection '\(store.name)': \(s.filesSeen) files seen — \(s.filesAdded) new, \(s.filesUpdated) changed, \(s.filesUnchanged) unchanged, \(s.filesRemoved) removed" + (s.failed.isEmpty ? "" : ", \(s.failed.count) failed"))
        if s.chunksEmbedded > 0 || s.documentsEmbedded > 0 {
            lines.append(String(format: "  embedded %d documents as %d chunks in %.1f s (%.1f chunks/s)", s.documentsEmbedded, s.chunksEmbedded, s.seconds, Double(s.chunksEmbedded) / max(s.seconds, 1e-9)))
        }
        if s.documentsRemoved > 0 { lines.append("  removed \(s.documentsRemoved) documents") }
        if !s.failed.isEmpty {
            lines.append("  could not ingest:")
            for f in s.failed { lines.append("    \(displayPath(f.path)): \(f.reason.replacingOccurrences(of: f.path + ": ", with: ""))") }
        }
        for n in s.notes { lines.append("  note: \(displayPath(n.path)): \(n.reason)") }
        for n in s.skipped { lines.append("  skipped \(displayPath(n.path)): \(n.reason)") }
        if let st = stats { lines.append("  now \(st.documents) documents, \(st.chunks) chunks, \(formatBytes(st.bytes)) (\(st.directory))") }
        print(lines.joined(separator: "\n"))
    }
}

struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Find the passages of a collection that best match a query.")

    @Argument(help: "What to look for.") var query: String
    @OptionGroup var target: CollectionOption
    @Option(name: .short, help: "Number of results.") var k: Int = 5
    @Option(help: "vector (meaning), keyword (BM25), or hybrid (both, fused by reciprocal rank).") var mode: RetrievalMode = .hybrid
    @Option(help: "Only matching chunks: path=GLOB, type=pdf, or FIELD=VALUE for a metadata field (repeatable).") var filter: [String] = []
    @Option(help: "Diversify results by maximal marginal relevance with this λ (1: relevance only, 0: diversity only).") var mmr: Double?
    @Option(name: .customLong("vector-weight"), help: "Hybrid: weight of the vector ranking.") var vectorWeight: Double = 1
    @Option(name: .customLong("keyword-weight"), help: "Hybrid: weight of the keyword ranking.") var keywordWeight: Double = 1
    @Option(help: "Vector index: auto (HNSW from 50k chunks), exact, or hnsw.") var index: IndexOptions.Kind = .auto
    @Option(name: [.short, .long], help: "Embedding model (default: the collection's).") var model: String?
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Print results as JSON.") var json = false

    func validate() throws {
        guard k >= 1 else { throw ValidationError("-k must be at least 1") }
        if let m = mmr, !(0...1).contains(m) { throw ValidationError("--mmr must be between 0 and 1") }
    }

    func run() async throws {
        var settings = RetrievalSettings(mode: mode)
        settings.mmrLambda = mmr; settings.vectorWeight = vectorWeight; settings.keywordWeight = keywordWeight
        let line = ProgressLine()
        var indexOptions = IndexOptions()
        indexOptions.kind = index; indexOptions.threads = threads
        indexOptions.progress = { d, n in line.update("building the vector index: \(d)/\(n)") }
        let f = try runReportingErrors { try Filter.parse(filter) }
        let results = try runReportingErrors {
            try KnowledgeBase.open(target.collection, store: try target.store.location(), embedder: model, threads: threads)
                .retriever(defaults: settings, index: indexOptions).retrieve(query, k: k, filter: f)
        }
        line.finish()
        if json { emit(try jsonString(results.enumerated().map { SearchResult($0.element, rank: $0.offset + 1) }) + "\n"); return }
        if results.isEmpty { print("No results."); return }
        for (i, r) in results.enumerated() {
            let c = r.chunk
            var head = "\(i + 1). \(displayPath(c.path))"
            if c.documentKey != c.path { head += " #" + c.documentKey.dropFirst(c.path.count + 1) }
            if !c.location.isEmpty { head += " — " + c.location }
            print(head + String(format: "  (score %.4f)", r.score))
            print("   " + snippet(c.text, query: query).replacingOccurrences(of: "\n", with: "\n   "))
        }
    }

    struct SearchResult: Codable {
        var rank: Int, score: Double, path: String, key: String, title: String?, location: String
        var heading: [String], pageStart: Int?, pageEnd: Int?, rowStart: Int?, rowEnd: Int?, start: Int, end: Int
        var text: String, metadata: [String: String], vectorRank: Int?, keywordRank: Int?
        init(_ r: ScoredChunk, rank: Int) {
            let c = r.chunk
            self.rank = rank; score = r.score; path = c.path; key = c.documentKey; title = c.title; location = c.location
            heading = c.chunk.headingPath; pageStart = c.chunk.pageStart; pageEnd = c.chunk.pageEnd
            rowStart = c.chunk.rowStart; rowEnd = c.chunk.rowEnd; start = c.chunk.start; end = c.chunk.end
            text = c.text; metadata = c.metadata; vectorRank = r.vectorRank; keywordRank = r.keywordRank
        }
    }
}

/// Up to ~300 characters of `text`, around the first query word it contains.
func snippet(_ text: String, query: String, width: Int = 300) -> String {
    let flat: String = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    guard flat.count > width else { return flat }
    let words = query.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).filter { $0.count > 3 }.map(String.init)
    let lower = flat.lowercased()
    var center = 0
    for w in words { if let r = lower.range(of: String(w)) { center = lower.distance(from: lower.startIndex, to: r.lowerBound); break } }
    let start = max(0, min(center - width / 3, flat.count - width))
    let s = flat.index(flat.startIndex, offsetBy: start), e = flat.index(s, offsetBy: width)
    return (start > 0 ? "…" : "") + String(flat[s..<e]) + "…"
}

func jsonString<T: Encodable>(_ v: T) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    enc.dateEncodingStrategy = .iso8601
    return String(decoding: try enc.encode(v), as: UTF8.self)
}

extension RetrievalMode: ExpressibleByArgument {}
extension IndexOptions.Kind: ExpressibleByArgument {}

struct CollectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collections", abstract: "List, inspect and delete collections.",
        subcommands: [List.self, Stats.self, Check.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The collections, with their size.")
        @Flag(help: "Print as JSON.") var json = false
        @OptionGroup var store: StoreOption
        func run() async throws {
            let location = try store.location()
            let names = try runReportingErrors { try Collections.names(at: location) }
            let stats = names.compactMap { try? Collections.open($0, at: location).stats() }
            if json { emit(try jsonString(stats) + "\n"); return }
            if stats.isEmpty { print("No collections in \(location). Create one with `tailor ingest PATH -c NAME`."); return }
            let w = max(10, stats.map(\.name.count).max() ?? 0)
            print("NAME".padding(toLength: w, withPad: " ", startingAt: 0) + "  DOCUMENTS    CHUNKS  SIZE        EMBEDDER")
            for s in stats {
                print(s.name.padding(toLength: w, withPad: " ", startingAt: 0) + String(format: "  %9d  %8d  ", s.documents, s.chunks)
                      + formatBytes(s.bytes).padding(toLength: 10, withPad: " ", startingAt: 0) + "  " + (s.embedder ?? "-"))
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Details of one collection.")
        @Argument(help: "Collection name or folder.") var collection: String = Collections.defaultName
        @Flag(help: "Print as JSON.") var json = false
        @OptionGroup var location: StoreOption
        func run() async throws {
            let store = try runReportingErrors { try Collections.open(collection, at: try location.location()) }
            let s = try runReportingErrors { try store.stats() }
            if json { emit(try jsonString(s) + "\n"); return }
            print("Collection \(s.name) (\(s.directory))")
            print("  embedder:  \(s.embedder ?? "-")\(s.dimension.map { " (\($0) dims)" } ?? "")")
            print("  files:     \(s.files)\(s.failedFiles > 0 ? " (+\(s.failedFiles) that could not be read)" : "")")
            print("  documents: \(s.documents)" + (s.types.isEmpty ? "" : " (" + s.types.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")"))
            print("  chunks:    \(s.chunks)")
            print("  size:      \(formatBytes(s.bytes))")
            if let u = s.updatedAt { print("  updated:   \(u)") }
            let failed = (try? store.files().filter { $0.status != "ok" }) ?? []
            for f in failed { print("  unreadable: \(displayPath(f.path)): \(f.error ?? "")") }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a collection's consistency: every document whole, every chunk indexed.")
        @Argument(help: "Collection name or folder.") var collection: String = Collections.defaultName
        @Flag(help: "Print as JSON: {\"collection\", \"ok\", \"problems\"}.") var json = false
        @OptionGroup var location: StoreOption
        func run() async throws {
            let store = try runReportingErrors { try Collections.open(collection, at: try location.location()) }
            let problems = try runReportingErrors { try store.integrityProblems() }
            if json {
                struct CheckReport: Codable { var collection: String; var location: String; var ok: Bool; var problems: [String] }
                emit(try jsonString(CheckReport(collection: store.name, location: store.location, ok: problems.isEmpty, problems: problems)) + "\n")
                if problems.isEmpty { return } else { throw ExitCode.failure }
            }
            if problems.isEmpty { print("ok: \(store.name) is consistent"); return }
            for p in problems { print("problem: \(p)") }
            note("Re-ingest the affected files, or delete and rebuild the collection.")
            throw ExitCode.failure
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a collection (its index only; your files are not touched).")
        @Argument(help: "Collection name or folder.") var collection: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @Flag(help: "Print the result as JSON.") var json = false
        @OptionGroup var location: StoreOption
        func run() async throws {
            let at = try location.location()
            let store = try runReportingErrors { try Collections.open(collection, at: at) }
            let s = try runReportingErrors { try store.stats() }
            if !yes {
                guard isatty(0) == 1 else { note("error: add --yes to delete '\(s.name)' without a prompt"); throw ExitCode.failure }
                FileHandle.standardError.write(Data("Delete collection '\(s.name)' (\(s.documents) documents, \(s.chunks) chunks)? [y/N] ".utf8))
                guard let a = readLine(), a.lowercased().hasPrefix("y") else { print("Kept."); return }
            }
            try runReportingErrors { try Collections.delete(collection, at: at) }
            if json {
                struct Deleted: Codable { var deleted: String; var documents: Int; var chunks: Int }
                emit(try jsonString(Deleted(deleted: s.name, documents: s.documents, chunks: s.chunks)) + "\n")
            } else { print("Deleted collection '\(s.name)'.") }
        }
    }
}

struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-embed a collection's chunks, e.g. with another embedding model.",
        discussion: "Interrupted runs resume; the collection keeps its old embeddings until every chunk has a new one.")
    @OptionGroup var target: CollectionOption
    @Option(name: [.short, .long], help: "Embedding model (default: the collection's own).") var model: String?
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores

    func run() async throws {
        installInterruptHandler()
        let kb = try runReportingErrors { try KnowledgeBase.open(target.collection, store: try target.store.location(), embedder: model, threads: threads) }
        let line = ProgressLine()
        let r = try runReportingErrors {
            try kb.reindex(shouldStop: { stopRequested.load(ordering: .relaxed) }) { p in
                line.update(String(format: "re-embedding: %d/%d chunks, %.1f chunks/s, ETA %@", p.done, p.total, p.chunksPerSecond,
                                   formatDuration(p.eta ?? 0)))
            }
        }
        line.finish()
        if !r.finished { note("Stopped; run the same command again to finish."); throw ExitCode(130) }
        print("Re-embedded \(r.chunks) chunks of '\(kb.store.name)' with \(r.embedder) (\(r.dimension) dims).")
    }
}

struct Extract: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the text and structure Tailor reads from a file (what ingest would index), and its chunks.")
    @Argument(help: "A file.") var file: String
    @Flag(help: "Also show the chunks, sized for the embedder.") var chunks = false
    @Option(name: [.short, .long], help: "Embedding model whose tokens size the chunks.") var model: String?
    @Option(name: .customLong("chunk-tokens"), help: "Most tokens per chunk.") var chunkTokens: Int = 256
    @Option(name: .customLong("text-field"), help: "JSON/JSONL: the field holding the text.") var textField: String?
    @Flag(help: "Print as JSON.") var json = false

    func run() async throws {
        let docs = try runReportingErrors { try Loaders.load(URL(fileURLWithPath: file).standardizedFileURL.path, options: LoaderOptions(textField: textField)) }
        var chunker: Chunker? = nil
        if chunks {
            let e = try runReportingErrors { try SentenceEmbedder(model) }
            chunker = Chunker(maxTokens: min(chunkTokens, e.maxTokens - 2), overlap: 32, countTokens: e.countTokens)
        }
        if json {
            struct B: Codable { var kind: String; var text: String; var heading: [String]; var page: Int?; var row: Int?; var start: Int; var end: Int }
            struct C: Codable { var text: String; var location: String; var start: Int; var end: Int; var tokens: Int }
            struct D: Codable { var key: String; var type: String; var title: String?; var metadata: [String: String]; var notes: [String]; var blocks: [B]; var chunks: [C]? }
            let out = docs.map { d in
                D(key: d.key, type: d.type.rawValue, title: d.title, metadata: d.metadata, notes: d.notes,
                  blocks: d.blocks.map { B(kind: $0.kind.rawValue, text: $0.text, heading: $0.headingPath, page: $0.page, row: $0.row, start: $0.start, end: $0.end) },
                  chunks: chunker?.chunk(d).map { C(text: $0.text, location: $0.location, start: $0.start, end: $0.end, tokens: $0.tokens) })
            }
            emit(try jsonString(out) + "\n"); return
        }
        for d in docs {
            print("== \(displayPath(d.key)) (\(d.type.rawValue))" + (d.title.map { " — \($0)" } ?? ""))
            for (k, v) in d.metadata.sorted(by: { $0.key < $1.key }) { print("   \(k): \(v)") }
            for n in d.notes { print("   note: \(n)") }
            for b in d.blocks {
                var loc = b.headingPath.joined(separator: " > ")
                if let p = b.page { loc = "page \(p)" + (loc.isEmpty ? "" : ", " + loc) }
                if let r = b.row { loc = "row \(r)" + (loc.isEmpty ? "" : ", " + loc) }
                print("[\(b.kind.rawValue) \(b.start)-\(b.end)\(loc.isEmpty ? "" : " · " + loc)] \(b.text)")
            }
            if let chunker {
                for c in chunker.chunk(d) { print("--- chunk \(c.ordinal) (\(c.tokens) tokens, \(c.start)-\(c.end)\(c.location.isEmpty ? "" : ", " + c.location))\n\(c.text)") }
            }
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a collection to another store: SQLite to PostgreSQL and back (resumable).",
        discussion: """
            Copies documents, chunks with their embeddings (nothing is re-embedded) and file records. \
            Stopped or interrupted runs resume: documents already copied are skipped. The destination \
            ends as a mirror of the source. Example: \
            tailor migrate -c docs --to postgresql://tailor@db.example:5432/rag
            """)
    @Option(name: [.customShort("c"), .long], help: "The collection to copy. Default: \(Collections.defaultName).") var collection: String?
    @Option(help: "Where it is now: a folder or postgresql://… (default: $TAILOR_STORE, else $TAILOR_HOME/collections).") var from: String?
    @Option(help: "Where to copy it: a folder or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE.") var to: String
    @Option(name: .customLong("as"), help: "Name in the destination (default: the same name).") var newName: String?
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        installInterruptHandler()
        let (source, destination) = try runReportingErrors { () throws -> (any CollectionStore, any CollectionStore) in
            let src = try StoreLocation.parse(from), dst = try StoreLocation.parse(to)
            let s = try Collections.open(collection, at: src)
            let d = try Collections.open(newName ?? s.name, at: dst, create: true)
            guard s.location != d.location else { throw RAGError.badInput("--to names the collection itself (\(s.location)); give another store or --as NAME") }
            return (s, d)
        }
        let line = ProgressLine()
        let start = Date()
        let summary = try runReportingErrors {
            try CollectionCopy.copy(from: source, to: destination, shouldStop: { stopRequested.load(ordering: .relaxed) }) { p in
                if let share = p.indexBuilt { line.update(String(format: "building the vector index: %.0f%%", 100 * share)) }
                else { line.update("copying \(source.name): \(p.done)/\(p.total) documents") }
            }
        }
        line.finish()
        struct Report: Codable { var from: String; var to: String; var summary: CollectionCopy.Summary; var seconds: Double }
        if json { emit(try jsonString(Report(from: source.location, to: destination.location, summary: summary, seconds: Date().timeIntervalSince(start))) + "\n") }
        if !summary.finished { note("Stopped; run the same command again to finish (copied documents are kept)."); throw ExitCode(130) }
        if !json {
            print("Copied '\(source.name)' (\(source.location)) to \(destination.location): \(summary.copied) documents (\(summary.chunks) chunks) copied, "
                  + "\(summary.alreadyThere) already there, \(summary.removed) removed, \(summary.files) file records.")
        }
    }
}
