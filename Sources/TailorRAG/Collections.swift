// Where collections live: by default SQLite files in $TAILOR_HOME/collections/NAME (default
// ~/.cache/tailor/collections) or any folder given as a path; with `--store postgresql://…` (or
// TAILOR_STORE) in a PostgreSQL database with pgvector, shared by every process that names it.
import Foundation
import TailorModels

/// The place that holds collections: a folder of SQLite collections, or a PostgreSQL database.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case folder(URL)
    case postgres(PostgresURL)

    /// `--store` (a folder, or `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`); nil or empty: the
    /// `TAILOR_STORE` environment variable, else the default folder.
    public static func parse(_ spec: String?) throws -> StoreLocation {
        let s = (spec?.isEmpty == false ? spec : ProcessInfo.processInfo.environment["TAILOR_STORE"]) ?? ""
        if s.isEmpty { return .folder(Collections.directory) }
        if s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") { return .postgres(try PostgresURL(s)) }
        if s.contains("://") {
            throw RAGError.badInput("--store \(s): give a folder or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        return .folder(URL(fileURLWithPath: s).standardizedFileURL)
    }

    /// The default: TAILOR_STORE, else $TAILOR_HOME/collections.
    public static var `default`: StoreLocation {
        get throws { try parse(nil) }
    }

    /// For messages: the folder, or the URL without its password.
    public var description: String {
        switch self {
        case .folder(let u): return u.path
        case .postgres(let p): return p.redacted
        }
    }
}

public enum Collections {
    public static let defaultName = "default"
    public static var directory: URL { ModelCache.home.appendingPathComponent("collections") }

    /// The folder of a SQLite collection: a name (letters, digits, - _ .) under the collections
    /// folder (`directory`, or another one a server is given), or a path (anything with a /).
    public static func url(_ spec: String?, in folder: URL? = nil) throws -> URL {
        let s = try checkedName(spec, allowPath: true)
        if s.contains("/") { return URL(fileURLWithPath: s).standardizedFileURL }
        return (folder ?? directory).appendingPathComponent(s)
    }

    /// A collection's name as given, checked: letters, digits, - _ . (a path with a / where allowed).
    static func checkedName(_ spec: String?, allowPath: Bool) throws -> String {
        let s = spec ?? defaultName
        if allowPath && s.contains("/") { return s }
        // PostgreSQL names a schema after it (63 bytes at most): 50 characters there.
        guard !s.isEmpty, !s.hasPrefix("."), allowPath || s.utf8.count <= 50,
              s.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0) }) else {
            throw RAGError.badInput("collection name '\(s)': use letters, digits, - _ .\(allowPath ? " (or give a folder path with a /)" : " (at most 50 bytes; in PostgreSQL a collection is a name, not a folder)")")
        }
        return s
    }

    public static func exists(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent(SQLiteStore.fileName).path)
    }

    /// Names of the collections in the collections folder.
    public static func names(in folder: URL? = nil) -> [String] {
        let dir = folder ?? directory
        let items = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return items.filter { exists(dir.appendingPathComponent($0)) }.sorted()
    }

    /// Opens an existing SQLite collection (a clear error naming the known ones when it is missing).
    public static func open(_ spec: String?, in folder: URL? = nil) throws -> SQLiteStore {
        let u = try url(spec, in: folder)
        guard exists(u) else { throw RAGError.collectionNotFound(spec ?? defaultName, known: names(in: folder)) }
        return try SQLiteStore(directory: u, create: false)
    }

    public static func delete(_ spec: String, in folder: URL? = nil) throws {
        let u = try url(spec, in: folder)
        guard exists(u) else { throw RAGError.collectionNotFound(spec, known: names(in: folder)) }
        // Only the files a collection consists of, then the folder if it is empty.
        for f in [SQLiteStore.fileName, SQLiteStore.fileName + "-wal", SQLiteStore.fileName + "-shm", "vectors.hnsw", "vectors.f32"] {
            try? FileManager.default.removeItem(at: u.appendingPathComponent(f))
        }
        if (try? FileManager.default.contentsOfDirectory(atPath: u.path))?.isEmpty == true {
            try? FileManager.default.removeItem(at: u)
        }
    }

    // MARK: any store location

    /// Opens a collection where `location` says (nil: the default). A SQLite name may also be a
    /// folder path. With `create`, a missing collection is created; otherwise it is an error
    /// naming the known ones.
    public static func open(_ spec: String?, at location: StoreLocation?, create: Bool = false) throws -> any CollectionStore {
        switch try location ?? .default {
        case .folder(let folder):
            let u = try url(spec, in: folder)
            if !exists(u) && !create { throw RAGError.collectionNotFound(spec ?? defaultName, known: names(in: folder)) }
            return try SQLiteStore(directory: u, create: create)
        case .postgres(let p):
            let name = try checkedName(spec, allowPath: false)
            return try PostgresStore(database: PostgresCollections.shared(p), name: name, create: create)
        }
    }

    public static func exists(_ spec: String?, at location: StoreLocation?) throws -> Bool {
        switch try location ?? .default {
        case .folder(let folder): return exists(try url(spec, in: folder))
        case .postgres(let p): return try PostgresCollections.shared(p).collectionNames().contains(try checkedName(spec, allowPath: false))
        }
    }

    public static func names(at location: StoreLocation?) throws -> [String] {
        switch try location ?? .default {
        case .folder(let folder): return names(in: folder)
        case .postgres(let p): return try PostgresCollections.shared(p).collectionNames()
        }
    }

    public static func delete(_ spec: String, at location: StoreLocation?) throws {
        switch try location ?? .default {
        case .folder(let folder): try delete(spec, in: folder)
        case .postgres(let p):
            let db = try PostgresCollections.shared(p)
            let name = try checkedName(spec, allowPath: false)
            guard try db.collectionNames().contains(name) else { throw RAGError.collectionNotFound(spec, known: try db.collectionNames()) }
            try db.dropCollection(name)
        }
    }
}
