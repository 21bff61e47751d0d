import Foundation
import Testing
import TailorTestSupport
@testable import TailorRAG

/// The two store backends: the same store tests run on each.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgresql
    var testDescription: String { rawValue }

    /// Where this backend keeps collections (PostgreSQL: the test server).
    func location(_ ws: Workspace) throws -> StoreLocation {
        switch self {
        case .sqlite: return .folder(ws.root.appendingPathComponent("collections"))
        case .postgresql: return .postgres(try PostgresURL(try TestPostgres.url()))
        }
    }

    /// A new empty collection, removed with the workspace. SQLite: the workspace's `collection`
    /// folder; PostgreSQL: a collection with a name of its own.
    func make(_ ws: Workspace, _ suffix: String = "") throws -> any CollectionStore {
        switch self {
        case .sqlite:
            return try SQLiteStore(directory: suffix.isEmpty ? ws.collection : ws.root.appendingPathComponent(suffix), create: true)
        case .postgresql:
            let name = "test-" + UUID().uuidString.prefix(8).lowercased() + (suffix.isEmpty ? "" : "-" + suffix)
            let location = try location(ws)
            ws.cleanups.append { try? Collections.delete(name, at: location) }
            return try Collections.open(name, at: location, create: true)
        }
    }
}
