// Where collections live: $TAILOR_HOME/collections/NAME (default ~/.cache/tailor/collections),
// or any folder given as a path.
import Foundation
import TailorModels

public enum Collections {
    public static let defaultName = "default"
    public static var directory: URL { ModelCache.home.appendingPathComponent("collections") }

    /// The folder of a collection: a name (letters, digits, - _ .) under the collections folder
    /// (`directory`, or another one a server is given), or a path (anything with a /).
    public static func url(_ spec: String?, in folder: URL? = nil) throws -> URL {
        let s = spec ?? defaultName
        if s.contains("/") { return URL(fileURLWithPath: s).standardizedFileURL }
        guard !s.isEmpty, !s.hasPrefix("."), s.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0) }) else {
            throw RAGError.badInput("collection name '\(s)': use letters, digits, - _ . (or give a folder path with a /)")
        }
        return (folder ?? directory).appendingPathComponent(s)
    }

    public static func exists(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent(Store.fileName).path)
    }

    /// Names of the collections in the collections folder.
    public static func names(in folder: URL? = nil) -> [String] {
        let dir = folder ?? directory
        let items = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return items.filter { exists(dir.appendingPathComponent($0)) }.sorted()
    }

    /// Opens an existing collection (a clear error naming the known ones when it is missing).
    public static func open(_ spec: String?, in folder: URL? = nil) throws -> Store {
        let u = try url(spec, in: folder)
        guard exists(u) else { throw RAGError.collectionNotFound(spec ?? defaultName, known: names(in: folder)) }
        return try Store(directory: u, create: false)
    }

    public static func delete(_ spec: String, in folder: URL? = nil) throws {
        let u = try url(spec, in: folder)
        guard exists(u) else { throw RAGError.collectionNotFound(spec, known: names(in: folder)) }
        // Only the files a collection consists of, then the folder if it is empty.
        for f in [Store.fileName, Store.fileName + "-wal", Store.fileName + "-shm", "vectors.hnsw", "vectors.f32"] {
            try? FileManager.default.removeItem(at: u.appendingPathComponent(f))
        }
        if (try? FileManager.default.contentsOfDirectory(atPath: u.path))?.isEmpty == true {
            try? FileManager.default.removeItem(at: u)
        }
    }
}
