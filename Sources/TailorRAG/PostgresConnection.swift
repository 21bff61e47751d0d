// PostgreSQL access for the PostgreSQL store: the URL users give (`postgresql://USER[:PASSWORD]@
// HOST[:PORT]/DATABASE`), blocking calls over PostgresNIO's connections (the store's callers are
// synchronous: CLI commands, and the server's work threads), a small connection pool per
// database, transactions, and errors that name the server without the password.
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Where a PostgreSQL database is.
public struct PostgresURL: Sendable, Equatable, Hashable {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// libpq's `sslmode`: disable, prefer (the default: TLS when the server offers it), require
    /// (TLS, certificate not checked), verify-ca or verify-full (TLS with the certificate checked
    /// against the system's trust store; verify-full also checks the host name).
    public var sslMode: String

    public init(_ s: String) throws {
        guard let c = URLComponents(string: s), c.scheme == "postgresql" || c.scheme == "postgres",
              let host = c.host, !host.isEmpty else {
            throw RAGError.badInput("store URL '\(Self.redact(s))': write postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        guard let user = c.user, !user.isEmpty else {
            throw RAGError.badInput("store URL '\(Self.redact(s))': name the user, e.g. postgresql://tailor@\(host)/\(c.path.dropFirst())")
        }
        self.user = user
        password = c.password
        self.host = host
        port = c.port ?? 5432
        let db = String(c.path.drop(while: { $0 == "/" }))
        database = db.isEmpty ? user : db
        sslMode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw RAGError.badInput("store URL '\(Self.redact(s))': sslmode=\(sslMode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
    }

    /// The TLS settings `sslMode` asks for.
    func tls() throws -> PostgresConnection.Configuration.TLS {
        switch sslMode {
        case "disable": return .disable
        case "verify-ca", "verify-full":
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = sslMode == "verify-full" ? .fullVerification : .noHostnameVerification
            return .require(try NIOSSLContext(configuration: c))
        default:
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            let context = try NIOSSLContext(configuration: c)
            return sslMode == "require" ? .require(context) : .prefer(context)
        }
    }

    /// The URL without its password, for messages and reports.
    public var redacted: String { "postgresql://\(user)@\(host):\(port)/\(database)" }

    /// A URL-like text with any password replaced by ***.
    static func redact(_ s: String) -> String {
        guard let at = s.lastIndex(of: "@"), let scheme = s.range(of: "://"), scheme.upperBound < at,
              let colon = s[scheme.upperBound..<at].firstIndex(of: ":") else { return s }
        return String(s[..<s.index(after: colon)]) + "***" + String(s[at...])
    }
}

/// One connection, used by one caller at a time (the pool hands it out).
// @unchecked Sendable: the PostgresNIO connection is Sendable; `broken` is only touched by the
// caller that holds the connection.
final class PGConnection: @unchecked Sendable {
    let connection: PostgresConnection
    let url: PostgresURL
    var broken = false
    static let logger: Logger = {
        var l = Logger(label: "tailor.postgres")
        l.logLevel = .critical
        return l
    }()

    init(url: PostgresURL) throws {
        self.url = url
        do {
            let config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                          database: url.database, tls: try url.tls())
            connection = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config,
                                                        id: 1, logger: Self.logger).wait()
        } catch {
            throw PGConnection.describe(error, url: url, connecting: true)
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func query(_ sql: String, _ binds: PostgresBindings = PostgresBindings()) throws -> [PostgresRow] {
        do {
            return try wait(connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: Self.logger)).rows
        } catch {
            if connection.isClosed { broken = true }
            throw PGConnection.describe(error, url: url, connecting: false)
        }
    }

    /// Runs one long statement, calling `tick` about every second until it answers.
    func query(_ sql: String, whileWaiting tick: () -> Void) throws {
        let f = connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger)
        let done = Atomic<Bool>(false)
        f.whenComplete { _ in done.store(true, ordering: .releasing) }
        var last = Date()
        while !done.load(ordering: .acquiring) && !connection.isClosed {
            Thread.sleep(forTimeInterval: 0.05)
            if Date().timeIntervalSince(last) >= 1 { tick(); last = Date() }
        }
        do { _ = try wait(f) } catch {
            if connection.isClosed { broken = true }
            throw PGConnection.describe(error, url: url, connecting: false)
        }
    }

    /// Sends every statement before waiting for any (one round trip for many), then returns each
    /// one's rows; the first failure is thrown after all have answered.
    func pipeline(_ statements: [(String, PostgresBindings)]) throws -> [[PostgresRow]] {
        let futures = statements.map { connection.query(PostgresQuery(unsafeSQL: $0.0, binds: $0.1), logger: Self.logger) }
        var out: [[PostgresRow]] = [], first: (any Error)? = nil
        for f in futures {
            do { out.append(try wait(f).rows) } catch { if first == nil { first = error }; out.append([]) }
        }
        if let first {
            if connection.isClosed { broken = true }
            throw PGConnection.describe(first, url: url, connecting: false)
        }
        return out
    }

    /// The connection closed while a statement waited for its answer.
    struct ConnectionLost: Error {}

    /// The statement's answer, or an error as soon as the connection closes (PostgresNIO may leave
    /// a statement sent on a closing connection waiting for ever, e.g. after the server
    /// terminated the session).
    private func wait<T: Sendable>(_ f: EventLoopFuture<T>) throws -> T {
        let p = f.eventLoop.makePromise(of: T.self)
        f.cascade(to: p)
        connection.closeFuture.whenComplete { _ in p.fail(ConnectionLost()) }
        return try p.futureResult.wait()
    }

    func close() { if !connection.isClosed { try? connection.close().wait() } }

    deinit { close() }

    /// SQLSTATE of a server error (e.g. 40P01 deadlock), if it is one.
    static func sqlState(_ e: any Error) -> String? {
        if case RAGError.postgres(_, _, let state) = e { return state }
        return (e as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// A clear error naming the server (never the password) and, where it can, the fix.
    static func describe(_ error: any Error, url: PostgresURL, connecting: Bool) -> RAGError {
        if let e = error as? RAGError { return e }
        let where_ = url.redacted
        if error is ConnectionLost {
            return .postgres(url: where_, detail: "the connection was lost; run the command again (finished work is kept)", sqlState: nil)
        }
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                let state = info[.sqlState] ?? ""
                var msg = info[.message] ?? "server error"
                if let d = info[.detail] { msg += " (\(d))" }
                switch state {
                case "28P01", "28000":
                    msg += "; check the user and password in --store or TAILOR_STORE"
                case "3D000":
                    msg += "; create it (createdb \(url.database)) or name another database in the URL"
                case "57P01", "57P02", "57P03":
                    msg += "; the server is shutting down or restarting: run the command again when it is back (finished work is kept)"
                default:
                    if let h = info[.hint] { msg += "; \(h)" }
                }
                return .postgres(url: where_, detail: msg, sqlState: state)
            }
            switch e.code {
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
                return .postgres(url: where_, detail: "the connection was lost; run the command again (finished work is kept)", sqlState: nil)
            case .connectionError:
                let why = e.underlying.map { "\($0)" } ?? "no answer"
                return .postgres(url: where_, detail: "cannot connect (\(why)); is PostgreSQL running and listening on \(url.host):\(url.port)?", sqlState: nil)
            case .sslUnsupported:
                return .postgres(url: where_, detail: "the server does not offer TLS but sslmode=\(url.sslMode) requires it; enable SSL on the server or use sslmode=prefer", sqlState: nil)
            case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
                return .postgres(url: where_, detail: "authentication failed (\(e.code)); give the password in the URL: postgresql://\(url.user):PASSWORD@\(url.host):\(url.port)/\(url.database)", sqlState: nil)
            default:
                return .postgres(url: where_, detail: "\(e.code)" + (e.underlying.map { ": \($0)" } ?? ""), sqlState: nil)
            }
        }
        let text = "\(error)"
        if connecting {
            return .postgres(url: where_, detail: "cannot connect (\(text)); is PostgreSQL running and listening on \(url.host):\(url.port)?", sqlState: nil)
        }
        return .postgres(url: where_, detail: text, sqlState: nil)
    }
}

/// The connections to one database, shared by every collection a process opens in it, and the
/// catalog of Tailor's collections there.
// @unchecked Sendable: the idle list is guarded by `lock`; the rest is immutable.
public final class PostgresCollections: @unchecked Sendable {
    public let url: PostgresURL
    private let lock = NSLock()
    private var idle: [PGConnection] = []
    /// Idle connections kept for reuse (more may be open while busy).
    private let keep = 8

    private static let registry = Mutex<[PostgresURL: PostgresCollections]>([:])

    /// The process's handle on this database (set up on first use: pgvector, the text search
    /// configuration, the catalog table).
    public static func shared(_ url: PostgresURL) throws -> PostgresCollections {
        if let db = registry.withLock({ $0[url] }) { return db }
        let db = PostgresCollections(url: url)
        try db.setUp()
        return registry.withLock { r in
            if let existing = r[url] { return existing }
            r[url] = db
            return db
        }
    }

    init(url: PostgresURL) { self.url = url }

    deinit { for c in idle { c.close() } }

    /// Runs `body` with a connection of the pool. A pooled connection found dead (the server
    /// restarted or ended the session) is dropped with the other idle ones, and `body` runs once
    /// more on a new connection (a transaction that died with its connection was rolled back).
    func withConnection<T>(_ body: (PGConnection) throws -> T) throws -> T {
        while true {
            let reused = lock.withLock { idle.popLast() }
            let c = try reused ?? PGConnection(url: url)
            do {
                let r = try body(c)
                checkIn(c)
                return r
            } catch {
                checkIn(c)
                if reused != nil && (c.broken || c.connection.isClosed) {
                    let stale = lock.withLock { () -> [PGConnection] in defer { idle.removeAll() }; return idle }
                    for s in stale { s.close() }
                    continue
                }
                throw error
            }
        }
    }

    private func checkIn(_ c: PGConnection) {
        if c.broken || c.connection.isClosed { c.close(); return }
        let closeIt = lock.withLock { () -> Bool in
            if idle.count < keep { idle.append(c); return false }
            return true
        }
        if closeIt { c.close() }
    }

    /// Runs `body` in one transaction (committed if it returns, rolled back if it throws), again
    /// from the start when PostgreSQL reports a deadlock or a serialization failure.
    func transaction<T>(_ body: (PGConnection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try withConnection { c in
                    try c.query("BEGIN")
                    do {
                        let r = try body(c)
                        try c.query("COMMIT")
                        return r
                    } catch {
                        if !c.broken { _ = try? c.query("ROLLBACK") }
                        throw error
                    }
                }
            } catch {
                let state = PGConnection.sqlState(error)
                if attempt < 6, state == "40P01" || state == "40001" { continue }
                throw error
            }
        }
    }

    /// The catalog, the extension and the text search configuration, made once per database
    /// (under an advisory lock: several processes may start at once).
    func setUp() throws {
        try transaction { c in
            try c.query("SELECT pg_advisory_xact_lock(\(Self.setupLock))")
            if try c.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'").isEmpty {
                guard try !c.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").isEmpty else {
                    throw RAGError.postgres(url: url.redacted, detail: "the pgvector extension is not installed on this server; install pgvector (0.8 or later) or use a server that has it", sqlState: nil)
                }
                do { try c.query("CREATE EXTENSION IF NOT EXISTS vector") } catch {
                    let why = (error as? RAGError).map { if case .postgres(_, let d, _) = $0 { return d } else { return "\($0)" } } ?? "\(error)"
                    throw RAGError.postgres(url: url.redacted, detail: "pgvector is installed but \(url.user) may not enable it here (\(why)); ask the database owner to run CREATE EXTENSION vector in \(url.database)", sqlState: nil)
                }
            }
            try c.query("""
                CREATE TABLE IF NOT EXISTS public.tailor_collections(
                    name text PRIMARY KEY, schema text NOT NULL UNIQUE, created_at double precision NOT NULL)
                """)
            // Words as SQLite's FTS5 index takes them (the text arrives lower-cased, split at
            // every non-alphanumeric character): Porter-family stems (Snowball English), no stop
            // words at index time.
            if try c.query("SELECT 1 FROM pg_ts_config WHERE cfgname = 'tailor_english'").isEmpty {
                try c.query("CREATE TEXT SEARCH DICTIONARY public.tailor_english_stem (TEMPLATE = snowball, Language = english)")
                try c.query("CREATE TEXT SEARCH CONFIGURATION public.tailor_english (PARSER = default)")
                try c.query("ALTER TEXT SEARCH CONFIGURATION public.tailor_english ADD MAPPING FOR asciiword, word, hword_asciipart, hword_part WITH public.tailor_english_stem")
                try c.query("ALTER TEXT SEARCH CONFIGURATION public.tailor_english ADD MAPPING FOR numword, hword_numpart, int, uint, float, sfloat, version WITH simple")
            }
        }
    }

    static let setupLock: Int64 = 0x7461_696C_6F72   // "tailor"

    public func collectionNames() throws -> [String] {
        try withConnection { c in
            try c.query("SELECT name FROM public.tailor_collections ORDER BY name").map { try $0.decode(String.self) }
        }
    }

    /// Removes a collection and everything in it.
    public func dropCollection(_ name: String) throws {
        try transaction { c in
            var b = PostgresBindings(); b.append(name)
            guard let schema = try c.query("SELECT schema FROM public.tailor_collections WHERE name = $1 FOR UPDATE", b).first else { return }
            try c.query("DROP SCHEMA IF EXISTS \(PostgresStore.quote(try schema.decode(String.self))) CASCADE")
            try c.query("DELETE FROM public.tailor_collections WHERE name = $1", b)
        }
    }
}
