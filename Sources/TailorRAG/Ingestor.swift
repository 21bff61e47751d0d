// Ingestion: find files, load the new and changed ones, chunk, embed in batches, and store each
// batch of whole documents in one transaction. Unchanged files (same size and time, or same
// bytes) are skipped; documents whose text did not change are not re-embedded; files gone from
// a folder are removed. An interrupted run leaves only whole documents, and the next run picks
// up where it stopped.
import Foundation
import TailorModels

public struct IngestOptions: Sendable {
    /// Globs a file must match (relative path or file name) to be read; empty means every supported file.
    public var include: [String] = []
    public var exclude: [String] = []
    public var loader = LoaderOptions()
    /// Chunks embedded (and committed) together.
    public var batchSize = 128
    public init() {}
}

public struct IngestProgress: Sendable {
    public enum Phase: String, Sendable { case scanning, reading, embedding, done }
    public var phase: Phase
    public var filesDone: Int
    public var filesTotal: Int
    public var chunksDone: Int
    public var chunksTotal: Int
    public var elapsed: Double
    public var chunksPerSecond: Double { elapsed > 0 ? Double(chunksDone) / elapsed : 0 }
    public var eta: Double? { chunksDone > 0 && chunksTotal > chunksDone ? Double(chunksTotal - chunksDone) / chunksPerSecond : nil }
}

public struct IngestSummary: Sendable, Codable {
    public var filesSeen = 0
    public var filesUnchanged = 0
    public var filesAdded = 0
    public var filesUpdated = 0
    public var filesRemoved = 0
    public var documentsEmbedded = 0
    public var documentsUnchanged = 0
    public var documentsRemoved = 0
    public var chunksEmbedded = 0
    public var failed: [Failure] = []
    public var notes: [Failure] = []
    public var skipped: [Failure] = []
    public var interrupted = false
    public var seconds = 0.0

    public struct Failure: Sendable, Codable, Equatable { public var path: String; public var reason: String }
}

public final class Ingestor {
    public let store: any CollectionStore
    public let embedder: any Embedder
    public var chunker: Chunker
    public var options: IngestOptions
    /// Checked between batches; set it (e.g. from a SIGINT handler) to stop cleanly.
    public var shouldStop: () -> Bool = { false }

    public init(store: any CollectionStore, embedder: any Embedder, chunker: Chunker? = nil, options: IngestOptions = .init()) throws {
        self.store = store
        self.embedder = embedder
        self.chunker = chunker ?? Chunker(maxTokens: min(embedder.maxTokens - 2, 256), overlap: 32, countTokens: embedder.countTokens)
        self.options = options
        try store.bind(embedderName: embedder.name, dimension: embedder.dimension)
    }

    /// The supported files under `paths` (files as given; folders recursively, hidden entries
    /// skipped), filtered by the include/exclude globs. Paths that do not exist are reported.
    public func scan(_ paths: [String]) -> (files: [String], missing: [String], skipped: [IngestSummary.Failure]) {
        var out: [String] = [], missing: [String] = [], skipped: [IngestSummary.Failure] = []
        let fm = FileManager.default
        for p in paths {
            let root = URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: root, isDirectory: &isDir) else { missing.append(root); continue }
            if !isDir.boolValue {
                if DocumentType(path: root) == nil { skipped.append(.init(path: root, reason: "no loader for this file type")) }
                else { out.append(root) }
                continue
            }
            guard let e = fm.enumerator(at: URL(fileURLWithPath: root), includingPropertiesForKeys: [.isRegularFileKey, .isDirectoryKey],
                                        options: [.skipsHiddenFiles, .skipsPackageDescendants]) else { continue }
            for case let url as URL in e {
                let path = url.standardizedFileURL.path
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
                let rel = String(path.dropFirst(root.count).drop(while: { $0 == "/" }))
                if !options.include.isEmpty && !options.include.contains(where: { Glob.matches($0, rel) }) { continue }
                if options.exclude.contains(where: { Glob.matches($0, rel) }) { continue }
                if DocumentType(path: path) == nil { continue }
                out.append(path)
            }
        }
        return (Array(Set(out)).sorted(), missing, skipped)
    }

    public func ingest(_ paths: [String], progress: ((IngestProgress) -> Void)? = nil) throws -> IngestSummary {
        let start = Date()
        var summary = IngestSummary()
        progress?(IngestProgress(phase: .scanning, filesDone: 0, filesTotal: 0, chunksDone: 0, chunksTotal: 0, elapsed: 0))
        let (files, missing, skipped) = scan(paths)
        summary.skipped = skipped
        summary.filesSeen = files.count
        let roots = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path }

        // Files that were ingested from these roots but are gone (or now excluded).
        let seen = Set(files)
        for f in try store.files() {
            let under = roots.contains { r in f.path == r || f.path.hasPrefix(r.hasSuffix("/") ? r : r + "/") }
            if under && !seen.contains(f.path) {
                let n = try store.documentHashes(path: f.path).count
                try store.removeFile(f.path)
                summary.filesRemoved += 1
                summary.documentsRemoved += n
            }
        }
        for m in missing where try store.file(m) == nil {
            summary.failed.append(.init(path: m, reason: "no such file or folder"))
        }

        // Read and chunk what changed.
        var work: [(doc: Document, chunks: [Chunk], file: Int)] = []
        var fileRecords: [FileRecord] = []
        var deletions: [Int: [String]] = [:]
        var lastDocOfFile: [Int: Int] = [:]
        var filesNoDocs: [Int] = []
        for (i, path) in files.enumerated() {
            if shouldStop() { summary.interrupted = true; break }
            progress?(IngestProgress(phase: .reading, filesDone: i, filesTotal: files.count, chunksDone: 0, chunksTotal: work.reduce(0) { $0 + $1.chunks.count }, elapsed: Date().timeIntervalSince(start)))
            let attrs = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (attrs?[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let old = try store.file(path)
            if let old, old.status == "ok", old.size == size, old.mtime == mtime { summary.filesUnchanged += 1; continue }
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) }
            catch {
                summary.failed.append(.init(path: path, reason: "cannot read: \(error.localizedDescription)"))
                continue
            }
            var h = StableHash(); h.add(data)
            let hash = h.hex
            var record = FileRecord(path: path, hash: hash, size: size, mtime: mtime, status: "ok", error: nil)
            if let old, old.status == "ok", old.hash == hash {
                try store.touch(record); summary.filesUnchanged += 1; continue
            }
            let docs: [Document]
            do { docs = try Loaders.load(path, options: options.loader) }
            catch {
                let reason = (error as? RAGError)?.description ?? "\(error)"
                summary.failed.append(.init(path: path, reason: reason))
                record.status = "failed"; record.error = reason
                // Keep what an earlier version of the file gave; remember the failure.
                if old == nil { try store.write([], files: [record]) }
                continue
            }
            if old == nil { summary.filesAdded += 1 } else { summary.filesUpdated += 1 }
            for d in docs { for n in d.notes { summary.notes.append(.init(path: path, reason: n)) } }
            let stored = try store.documentHashes(path: path)
            let keys = Set(docs.map(\.key))
            let gone = stored.keys.filter { !keys.contains($0) }
            summary.documentsRemoved += gone.count
            deletions[fileRecords.count] = gone
            let fi = fileRecords.count
            fileRecords.append(record)
            var any = false
            for d in docs {
                if stored[d.key] == d.contentHash { summary.documentsUnchanged += 1; continue }
                let chunks = chunker.chunk(d)
                work.append((d, chunks, fi)); lastDocOfFile[fi] = work.count - 1; any = true
            }
            if !any { filesNoDocs.append(fi) }
        }
        // Files whose documents are all unchanged (or that now have none): record them at once.
        if !filesNoDocs.isEmpty {
            try store.write([], deleteKeys: filesNoDocs.flatMap { deletions[$0] ?? [] }, files: filesNoDocs.map { fileRecords[$0] })
        }

        // Embed and store, a batch of whole documents per transaction.
        let total = work.reduce(0) { $0 + $1.chunks.count }
        var done = 0
        let embedStart = Date()
        var i = 0
        while i < work.count && !summary.interrupted {
            if shouldStop() { summary.interrupted = true; break }
            var j = i, n = 0
            while j < work.count && (n == 0 || n + work[j].chunks.count <= options.batchSize) { n += work[j].chunks.count; j += 1 }
            let batch = work[i..<j]
            let texts = batch.flatMap { $0.chunks.map(\.contextualText) }
            let vectors = try embedder.embed(texts)
            var k = 0
            var prepared: [Prepared] = []
            for w in batch {
                prepared.append(Prepared(document: w.doc, chunks: w.chunks, vectors: Array(vectors[k..<(k + w.chunks.count)])))
                k += w.chunks.count
            }
            // A file is recorded (its hash) with the batch that holds its last changed document.
            let finished = Set(batch.map(\.file)).filter { lastDocOfFile[$0]! < j }
            try store.write(prepared, deleteKeys: finished.flatMap { deletions[$0] ?? [] }, files: finished.sorted().map { fileRecords[$0] })
            summary.documentsEmbedded += batch.count
            summary.chunksEmbedded += n
            done += n
            i = j
            progress?(IngestProgress(phase: .embedding, filesDone: Set(work[0..<j].map(\.file)).count, filesTotal: Set(work.map(\.file)).count,
                                     chunksDone: done, chunksTotal: total, elapsed: Date().timeIntervalSince(embedStart)))
        }
        summary.seconds = Date().timeIntervalSince(start)
        progress?(IngestProgress(phase: .done, filesDone: files.count, filesTotal: files.count, chunksDone: done, chunksTotal: total, elapsed: summary.seconds))
        return summary
    }
}

/// Shell-style globs: `*` (within a path segment), `**` (across segments), `?`, `[abc]`.
/// A pattern without `/` matches the file name in any folder.
public enum Glob {
    public static func matches(_ pattern: String, _ path: String) -> Bool {
        if !pattern.contains("/") {
            let name = (path as NSString).lastPathComponent
            return match(Array(pattern.unicodeScalars), Array(name.unicodeScalars))
        }
        let p = pattern.hasPrefix("./") ? String(pattern.dropFirst(2)) : pattern
        return match(Array(p.unicodeScalars), Array(path.unicodeScalars))
    }

    static func match(_ p: [Unicode.Scalar], _ s: [Unicode.Scalar]) -> Bool {
        var memo = [Int8](repeating: -1, count: (p.count + 1) * (s.count + 1))
        func go(_ i: Int, _ j: Int) -> Bool {
            let key = i * (s.count + 1) + j
            if memo[key] >= 0 { return memo[key] == 1 }
            var r: Bool
            if i == p.count { r = j == s.count }
            else if p[i] == "*" {
                let double = i + 1 < p.count && p[i + 1] == "*"
                let next = double ? (i + 2 < p.count && p[i + 2] == "/" ? i + 3 : i + 2) : i + 1
                r = go(next, j)
                var k = j
                while !r && k < s.count {
                    if !double && s[k] == "/" { break }
                    k += 1
                    r = go(next, k)
                }
                if !r && double && next == i + 3 { r = go(i + 2, j) }  // "**/" may also match nothing before a "/"
            } else if j < s.count {
                if p[i] == "?" { r = s[j] != "/" && go(i + 1, j + 1) }
                else if p[i] == "[", let close = p[(i + 1)...].firstIndex(of: "]") {
                    var set = Array(p[(i + 1)..<close]); var neg = false
                    if set.first == "!" || set.first == "^" { neg = true; set.removeFirst() }
                    var hit = false, k = 0
                    while k < set.count {
                        if k + 2 < set.count && set[k + 1] == "-" { if set[k] <= s[j] && s[j] <= set[k + 2] { hit = true }; k += 3 }
                        else { if set[k] == s[j] { hit = true }; k += 1 }
                    }
                    r = hit != neg && go(close + 1, j + 1)
                } else { r = p[i] == s[j] && go(i + 1, j + 1) }
            } else { r = false }
            memo[key] = r ? 1 : 0
            return r
        }
        return go(0, 0)
    }
}
