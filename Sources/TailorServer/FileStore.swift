// Uploaded files, as OpenAI's Files API keeps them: one folder per file under
// $TAILOR_HOME/server/files/ID holding the bytes (under the uploaded name) and file.json. They
// outlive the server; vector stores ingest them, fine-tuning jobs train on them.
import Foundation
import Synchronization
import TailorModels

/// An uploaded file's record (OpenAI's `file` object).
struct StoredFile: Codable, Sendable, Equatable {
    var id: String
    var object = "file"
    var bytes: Int
    var created_at: Int
    var filename: String
    var purpose: String
    var status = "processed"
}

final class FileStore: Sendable {
    /// The purposes OpenAI accepts that mean something here.
    static let purposes: Set<String> = ["fine-tune", "assistants", "user_data", "batch", "vision", "evals"]

    let directory: URL
    private let lock = Mutex<Void>(())

    init(directory: URL) {
        self.directory = directory
    }

    /// A name safe as a file name and as a path glob: the upload's last path component, with
    /// separators, glob characters and control characters replaced.
    static func safeName(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var out = String(last.unicodeScalars.map { c -> Character in
            if c.value < 32 || "*?[]".unicodeScalars.contains(c) { return "_" }
            return Character(c)
        })
        if out.isEmpty || out == "." || out == ".." { out = "upload" }
        return String(out.prefix(200))
    }

    func save(_ data: Data, filename: String, purpose: String) throws -> StoredFile {
        let id = APIRoutes.newID("file-")
        let dir = directory.appendingPathComponent(id)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let record = StoredFile(id: id, bytes: data.count, created_at: Int(Date().timeIntervalSince1970),
                                filename: Self.safeName(filename), purpose: purpose)
        // The bytes first, the record last: a file without its record is not listed.
        try data.write(to: dir.appendingPathComponent(record.filename), options: .atomic)
        try JSONEncoder().encode(record).write(to: dir.appendingPathComponent("file.json"), options: .atomic)
        return record
    }

    func get(_ id: String) throws -> StoredFile {
        guard Self.isID(id), let data = try? Data(contentsOf: directory.appendingPathComponent(id).appendingPathComponent("file.json")),
              let f = try? JSONDecoder().decode(StoredFile.self, from: data) else {
            throw OpenAIError.notFound("No file with id '\(id)' (GET /v1/files lists them)", param: "file_id", code: "file_not_found")
        }
        return f
    }

    /// Where a file's bytes are.
    func path(_ f: StoredFile) -> URL { directory.appendingPathComponent(f.id).appendingPathComponent(f.filename) }

    func list(purpose: String? = nil) -> [StoredFile] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return ids.compactMap { try? get($0) }.filter { purpose == nil || $0.purpose == purpose }.sorted { ($0.created_at, $0.id) > ($1.created_at, $1.id) }
    }

    func delete(_ id: String) throws {
        _ = try get(id)
        try lock.withLock { _ in try FileManager.default.removeItem(at: directory.appendingPathComponent(id)) }
    }

    static func isID(_ s: String) -> Bool {
        s.hasPrefix("file-") && s.count < 64 && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }
}
