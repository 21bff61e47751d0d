// OpenAI's Files and Vector Stores endpoints, so existing clients (`client.files.create`,
// `client.vector_stores.…`) work against Tailor's collections.
import Foundation
import Hummingbird
import MultipartKit
import NIOCore
import TailorFormats

struct ListPage<T: Encodable & Sendable>: Encodable, Sendable {
    var object = "list"
    var data: [T]
    var first_id: String?
    var last_id: String?
    var has_more = false
    init(_ data: [T], id: (T) -> String) {
        self.data = data
        first_id = data.first.map(id)
        last_id = data.last.map(id)
    }
}

struct Deleted: Codable, Sendable {
    var id: String
    var object: String
    var deleted = true
}

struct VectorStoreCreateRequest: Codable, Sendable {
    var name: String?
    var file_ids: [String]?
    var chunking_strategy: ChunkingStrategy?
    var metadata: [String: String]?
}

struct VectorStoreModifyRequest: Codable, Sendable {
    var name: String?
    var metadata: [String: String]?
}

struct VectorStoreFileRequest: Codable, Sendable {
    var file_id: String
    var chunking_strategy: ChunkingStrategy?
    var attributes: [String: JSONValue]?
}

struct FileBatchRequest: Codable, Sendable {
    var file_ids: [String]
    var chunking_strategy: ChunkingStrategy?
    var attributes: [String: JSONValue]?
}

struct FileBatchObject: Codable, Sendable {
    var id: String
    var object = "vector_store.files_batch"
    var vector_store_id: String
    var created_at: Int
    var status: String
    var file_counts: VectorStoreObject.Counts
}

struct VectorStoreSearchRequest: Codable, Sendable {
    var query: JSONValue
    var filters: JSONValue?
    var max_num_results: Int?
    var rewrite_query: Bool?
    var ranking_options: JSONValue?
}

struct SearchPage: Codable, Sendable {
    var object = "vector_store.search_results.page"
    var search_query: [String]
    var data: [VectorStores.SearchHit]
    var has_more = false
    var next_page: String? = nil
}

extension APIRoutes {
    // MARK: files

    /// POST /v1/files: multipart/form-data with `file` (the bytes and their name) and `purpose`.
    func uploadFile(_ request: Request, _ context: TailorRequestContext) async throws -> Response {
        let type = request.headers[.contentType] ?? ""
        guard type.lowercased().hasPrefix("multipart/form-data"),
              let boundary = Self.parameter("boundary", in: type) else {
            throw OpenAIError.badRequest("Send the file as multipart/form-data with fields 'file' and 'purpose' (Content-Type was '\(type)')", param: "file")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: config.maxFileBytes) } catch { throw OpenAIError.tooLarge(config.maxFileBytes) }
        let parts = try Self.multipartParts(buffer, boundary: boundary)
        guard let file = parts.first(where: { $0.name == "file" }) else {
            throw OpenAIError.badRequest("The form has no 'file' field", param: "file")
        }
        guard let purposePart = parts.first(where: { $0.name == "purpose" }) else {
            throw OpenAIError.badRequest("The form has no 'purpose' field (fine-tune or assistants)", param: "purpose")
        }
        let purpose = String(buffer: purposePart.body).trimmingCharacters(in: .whitespacesAndNewlines)
        guard FileStore.purposes.contains(purpose) else {
            throw OpenAIError.badRequest("purpose '\(purpose)': use fine-tune (training data) or assistants (documents for vector stores)", param: "purpose")
        }
        guard file.body.readableBytes > 0 else { throw OpenAIError.badRequest("The file is empty", param: "file") }
        let name = file.filename ?? "upload"
        let data = Data(file.body.readableBytesView)
        let files = backend.files
        let stored = try await Blocking.run { try files.save(data, filename: name, purpose: purpose) }
        return try json(stored)
    }

    /// A parameter of a header value such as `multipart/form-data; boundary=XYZ`.
    static func parameter(_ key: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0].lowercased() == key {
                return kv[1].hasPrefix("\"") && kv[1].hasSuffix("\"") && kv[1].count >= 2 ? String(kv[1].dropFirst().dropLast()) : kv[1]
            }
        }
        return nil
    }

    struct FormPart {
        var name: String?
        var filename: String?
        var body: ByteBuffer
    }

    /// The parts of a multipart body (MultipartKit's parser), with their field and file names.
    static func multipartParts(_ buffer: ByteBuffer, boundary: String) throws -> [FormPart] {
        let parser = MultipartParser(boundary: boundary)
        var parts: [FormPart] = []
        var current = FormPart(body: ByteBuffer())
        parser.onHeader = { name, value in
            guard name.lowercased() == "content-disposition" else { return }
            current.name = parameter("name", in: value)
            current.filename = parameter("filename", in: value)
        }
        parser.onBody = { chunk in current.body.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(current)
            current = FormPart(body: ByteBuffer())
        }
        do { try parser.execute(buffer) } catch {
            throw OpenAIError.badRequest("The multipart body could not be read: \(error)", param: "file")
        }
        return parts
    }

    func fileContent(_ id: String) async throws -> Response {
        let files = backend.files
        let (record, data) = try await Blocking.run { () throws -> (StoredFile, Data) in
            let f = try files.get(id)
            return (f, try Data(contentsOf: files.path(f)))
        }
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        headers[.contentDisposition] = "attachment; filename=\"\(record.filename.replacingOccurrences(of: "\"", with: "_"))\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: vector stores

    func searchVectorStore(_ id: String, _ r: VectorStoreSearchRequest) async throws -> Response {
        let queries: [String]
        switch r.query {
        case .string(let s): queries = [s]
        case .array(let a): queries = a.compactMap(\.string)
        default: queries = []
        }
        guard !queries.isEmpty, queries.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw OpenAIError.badRequest("query: give a non-empty string (or an array of them)", param: "query")
        }
        let k = r.max_num_results ?? 10
        guard (1...50).contains(k) else { throw OpenAIError.badRequest("max_num_results must be from 1 to 50", param: "max_num_results") }
        let stores = backend.vectorStores
        let hits = try await Blocking.run { try stores.search(id, queries: queries, filters: r.filters, maxResults: k) }
        return try json(SearchPage(search_query: queries, data: hits))
    }

    func fileBatch(_ storeID: String, _ batchID: String, fileIDs: [String], created: Int) throws -> FileBatchObject {
        let entries = try backend.vectorStores.listFiles(storeID, status: nil).filter { fileIDs.contains($0.id) }
        var counts = VectorStoreObject.Counts(entries.map(\.status))
        counts.total = fileIDs.count
        return FileBatchObject(id: batchID, vector_store_id: storeID, created_at: created,
                               status: counts.in_progress > 0 ? "in_progress" : "completed", file_counts: counts)
    }
}

/// The file and vector store routes.
func addFileRoutes(_ router: Router<TailorRequestContext>, _ api: APIRoutes, _ backend: Backend) {
    router.post("/v1/files") { request, context -> Response in
        try await api.guarded { try await api.uploadFile(request, context) }
    }
    router.get("/v1/files") { request, _ -> Response in
        let purpose = request.uri.queryParameters.get("purpose")
        return try api.json(ListPage(backend.files.list(purpose: purpose), id: \.id))
    }
    router.get("/v1/files/{id}") { _, context -> Response in
        try await api.guarded { try api.json(try backend.files.get(context.parameters.get("id") ?? "")) }
    }
    router.get("/v1/files/{id}/content") { _, context -> Response in
        try await api.guarded { try await api.fileContent(context.parameters.get("id") ?? "") }
    }
    router.delete("/v1/files/{id}") { _, context -> Response in
        try await api.guarded {
            let id = context.parameters.get("id") ?? ""
            try backend.files.delete(id)
            return try api.json(Deleted(id: id, object: "file"))
        }
    }

    router.post("/v1/vector_stores") { request, context -> Response in
        try await api.guarded {
            let r = try await api.decode(VectorStoreCreateRequest.self, request, context)
            let stores = backend.vectorStores
            return try api.json(try await Blocking.run { try stores.create(name: r.name, fileIDs: r.file_ids ?? [], chunking: r.chunking_strategy, metadata: r.metadata) })
        }
    }
    router.get("/v1/vector_stores") { _, _ -> Response in
        let stores = backend.vectorStores
        return try api.json(ListPage(try await Blocking.run { stores.list() }, id: \.id))
    }
    router.get("/v1/vector_stores/{id}") { _, context -> Response in
        try await api.guarded { try api.json(try backend.vectorStores.get(context.parameters.get("id") ?? "")) }
    }
    router.post("/v1/vector_stores/{id}") { request, context -> Response in
        try await api.guarded {
            let r = try await api.decode(VectorStoreModifyRequest.self, request, context)
            return try api.json(try backend.vectorStores.modify(context.parameters.get("id") ?? "", name: r.name, metadata: r.metadata))
        }
    }
    router.delete("/v1/vector_stores/{id}") { _, context -> Response in
        try await api.guarded {
            let id = context.parameters.get("id") ?? ""
            let stores = backend.vectorStores
            try await Blocking.run { try stores.delete(id) }
            return try api.json(Deleted(id: id, object: "vector_store.deleted"))
        }
    }
    router.post("/v1/vector_stores/{id}/files") { request, context -> Response in
        try await api.guarded {
            let r = try await api.decode(VectorStoreFileRequest.self, request, context)
            return try api.json(try backend.vectorStores.addFile(context.parameters.get("id") ?? "", fileID: r.file_id, chunking: r.chunking_strategy, attributes: r.attributes))
        }
    }
    router.get("/v1/vector_stores/{id}/files") { request, context -> Response in
        try await api.guarded {
            let status = request.uri.queryParameters.get("filter")
            return try api.json(ListPage(try backend.vectorStores.listFiles(context.parameters.get("id") ?? "", status: status), id: \.id))
        }
    }
    router.get("/v1/vector_stores/{id}/files/{file_id}") { _, context -> Response in
        try await api.guarded {
            try api.json(try backend.vectorStores.getFile(context.parameters.get("id") ?? "", fileID: context.parameters.get("file_id") ?? ""))
        }
    }
    router.delete("/v1/vector_stores/{id}/files/{file_id}") { _, context -> Response in
        try await api.guarded {
            let id = context.parameters.get("id") ?? "", file = context.parameters.get("file_id") ?? ""
            let stores = backend.vectorStores
            try await Blocking.run { try stores.removeFile(id, fileID: file) }
            return try api.json(Deleted(id: file, object: "vector_store.file.deleted"))
        }
    }
    // File batches: several files added at once; the batch id names the files (vsfb_ + their ids).
    router.post("/v1/vector_stores/{id}/file_batches") { request, context -> Response in
        try await api.guarded {
            let r = try await api.decode(FileBatchRequest.self, request, context)
            let id = context.parameters.get("id") ?? ""
            guard !r.file_ids.isEmpty, r.file_ids.count <= 500 else { throw OpenAIError.badRequest("file_ids: from 1 to 500 files", param: "file_ids") }
            for f in r.file_ids { _ = try backend.files.get(f) }
            for f in r.file_ids { _ = try backend.vectorStores.addFile(id, fileID: f, chunking: r.chunking_strategy, attributes: r.attributes) }
            let batch = "vsfb_" + r.file_ids.map { String($0.dropFirst(5)) }.joined(separator: ".")
            return try api.json(try api.fileBatch(id, batch, fileIDs: r.file_ids, created: Int(Date().timeIntervalSince1970)))
        }
    }
    router.get("/v1/vector_stores/{id}/file_batches/{batch}") { _, context -> Response in
        try await api.guarded {
            let id = context.parameters.get("id") ?? "", batch = context.parameters.get("batch") ?? ""
            guard batch.hasPrefix("vsfb_") else { throw OpenAIError.notFound("No file batch '\(batch)'", param: "batch_id", code: "not_found") }
            let ids = batch.dropFirst(5).split(separator: ".").map { "file-" + $0 }
            return try api.json(try api.fileBatch(id, batch, fileIDs: ids, created: Int(Date().timeIntervalSince1970)))
        }
    }
    router.post("/v1/vector_stores/{id}/search") { request, context -> Response in
        try await api.guarded {
            let r = try await api.decode(VectorStoreSearchRequest.self, request, context)
            return try await api.searchVectorStore(context.parameters.get("id") ?? "", r)
        }
    }
}

/// The fine-tuning job routes.
func addFineTuningRoutes(_ router: Router<TailorRequestContext>, _ api: APIRoutes, _ backend: Backend) {
    router.post("/v1/fine_tuning/jobs") { request, context -> Response in
        try await api.guarded {
            let r = try await api.decode(FineTuningJobRequest.self, request, context)
            let jobs = backend.fineTuning
            return try api.json(try await Blocking.run { try jobs.create(r) })
        }
    }
    router.get("/v1/fine_tuning/jobs") { request, _ -> Response in
        let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 20
        var all = backend.fineTuning.list()
        if let after = request.uri.queryParameters.get("after"), let i = all.firstIndex(where: { $0.id == after }) { all = Array(all[(i + 1)...]) }
        var page = ListPage(Array(all.prefix(max(1, limit))), id: \.id)
        page.has_more = all.count > limit
        return try api.json(page)
    }
    router.get("/v1/fine_tuning/jobs/{id}") { _, context -> Response in
        try await api.guarded { try api.json(try backend.fineTuning.get(context.parameters.get("id") ?? "")) }
    }
    router.get("/v1/fine_tuning/jobs/{id}/events") { request, context -> Response in
        try await api.guarded {
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 20
            var events = try backend.fineTuning.events(context.parameters.get("id") ?? "", limit: Int.max)
            if let after = request.uri.queryParameters.get("after"), let i = events.firstIndex(where: { $0.id == after }) { events = Array(events[(i + 1)...]) }
            var page = ListPage(Array(events.prefix(max(1, limit))), id: \.id)
            page.has_more = events.count > limit
            return try api.json(page)
        }
    }
    router.get("/v1/fine_tuning/jobs/{id}/checkpoints") { _, context -> Response in
        try await api.guarded { try api.json(ListPage(try backend.fineTuning.checkpoints(context.parameters.get("id") ?? ""), id: \.id)) }
    }
    router.post("/v1/fine_tuning/jobs/{id}/cancel") { _, context -> Response in
        try await api.guarded { try api.json(try backend.fineTuning.cancel(context.parameters.get("id") ?? "")) }
    }
}

/// A `tailor compare` report the web page can show.
struct ReportEntry: Codable, Sendable {
    var id: String
    var name: String
    var path: String
    var created_at: Int
}

extension Backend {
    /// The reports in the configured folders: ids are ROOT~NAME (the folder's index, the report
    /// folder's name), so a request can only reach report files inside them.
    func reports() -> [ReportEntry] {
        let fm = FileManager.default
        var out: [ReportEntry] = []
        for (i, root) in configuration.reportDirectories.enumerated() {
            var candidates: [(String, URL)] = [(root.lastPathComponent, root)]
            for sub in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where !sub.hasPrefix(".") { candidates.append((sub, root.appendingPathComponent(sub))) }
            for (name, dir) in candidates {
                let html = dir.appendingPathComponent("report.html")
                guard let attrs = try? fm.attributesOfItem(atPath: html.path) else { continue }
                let id = dir == root ? "\(i)~" : "\(i)~\(name)"
                out.append(ReportEntry(id: id, name: name, path: dir.path, created_at: Int((attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)))
            }
        }
        return out.sorted { $0.created_at > $1.created_at }
    }

    func reportFile(id: String, file: String) throws -> (Data, String) {
        let types = ["report.html": "text/html; charset=utf-8", "report.json": "application/json", "report.md": "text/markdown; charset=utf-8"]
        guard let type = types[file], let entry = reports().first(where: { $0.id == id }) else {
            throw OpenAIError.notFound("No report '\(id)' (GET /v1/tailor/reports lists them)", param: "report", code: "report_not_found")
        }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: entry.path).appendingPathComponent(file)) else {
            throw OpenAIError.notFound("Report '\(entry.name)' has no \(file)", param: "report", code: "report_not_found")
        }
        return (data, type)
    }
}

/// The report routes of the web page.
func addReportRoutes(_ router: Router<TailorRequestContext>, _ api: APIRoutes, _ backend: Backend) {
    router.get("/v1/tailor/reports") { _, _ -> Response in
        try api.json(ListPage(backend.reports(), id: \.id))
    }
    router.get("/reports/{id}/{file}") { _, context -> Response in
        try await api.guarded {
            let (data, type) = try backend.reportFile(id: context.parameters.get("id") ?? "", file: context.parameters.get("file") ?? "")
            return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}
