// OpenAI's fine-tuning jobs over `tailor tune`: a job trains a LoRA adapter on an uploaded JSONL
// file in the background (one job at a time, on the process's compute scheduler), reports the
// loss of every step as events, keeps its improving adapters as checkpoints, and once it
// succeeds its adapter is served as `MODEL+lora:JOB_ID` — the job's `fine_tuned_model`. Jobs
// live in $TAILOR_HOME/server/fine_tuning/JOB_ID (job.json, events.jsonl, the trainer's output
// with its checkpoint); a job the server was running or had queued when it stopped resumes from
// its last checkpoint when the server starts again.
import Foundation
import Synchronization
import TailorFormats
import TailorModels
import TailorTuning

/// "auto" or a number, as OpenAI's hyperparameters take them.
enum AutoOr<T: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case auto
    case value(T)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self), s == "auto" { self = .auto; return }
        self = .value(try c.decode(T.self))
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .auto: try c.encode("auto")
        case .value(let v): try c.encode(v)
        }
    }
    func or(_ fallback: T) -> T { if case .value(let v) = self { return v }; return fallback }
}

struct Hyperparameters: Codable, Sendable, Equatable {
    var n_epochs: AutoOr<Int>?
    var batch_size: AutoOr<Int>?
    var learning_rate_multiplier: AutoOr<Double>?
    /// Tailor's: LoRA rank, a cap on optimizer steps, the longest example in tokens.
    var lora_rank: Int?
    var max_steps: Int?
    var max_length: Int?
}

struct FineTuningMethod: Codable, Sendable, Equatable {
    struct Supervised: Codable, Sendable, Equatable { var hyperparameters: Hyperparameters? }
    var type: String
    var supervised: Supervised?
}

struct FineTuningJobRequest: Codable, Sendable {
    var model: String
    var training_file: String
    var validation_file: String?
    var hyperparameters: Hyperparameters?
    var method: FineTuningMethod?
    var suffix: String?
    var seed: UInt64?
    var metadata: [String: String]?
}

struct JobError: Codable, Sendable, Equatable {
    var code: String
    var message: String
    var param: String?
}

/// OpenAI's `fine_tuning.job`.
struct FineTuningJob: Codable, Sendable, Equatable {
    var id: String
    var object = "fine_tuning.job"
    var created_at: Int
    var finished_at: Int?
    var model: String
    var fine_tuned_model: String?
    var organization_id = "tailor"
    var status: String              // validating_files, queued, running, succeeded, failed, cancelled
    var hyperparameters: Hyperparameters
    var training_file: String
    var validation_file: String?
    var result_files: [String] = []
    var trained_tokens: Int?
    var error: JobError?
    var seed: UInt64
    var estimated_finish: Int?
    var method: FineTuningMethod
    var metadata: [String: String]?
    var suffix: String?
    /// Tailor's: steps done of all, and the latest losses (for the web page).
    var step: Int?
    var total_steps: Int?
    var train_loss: Double?
    var valid_loss: Double?

    var isFinished: Bool { ["succeeded", "failed", "cancelled"].contains(status) }
}

struct JobEvent: Codable, Sendable {
    var object = "fine_tuning.job.event"
    var id: String
    var created_at: Int
    var level: String
    var message: String
    var type: String                // message or metrics
    var data: [String: JSONValue]?
}

struct JobCheckpoint: Codable, Sendable {
    var object = "fine_tuning.job.checkpoint"
    var id: String
    var created_at: Int
    var fine_tuned_model_checkpoint: String
    var step_number: Int
    var metrics: [String: Double]
    var fine_tuning_job_id: String
}

final class FineTuningJobs: Sendable {
    let directory: URL
    private unowned let backend: Backend
    private let jobs = Mutex<[String: FineTuningJob]>([:])
    private let pending = Mutex<(queue: [String], running: String?)>(([], nil))
    private let cancelled = Mutex<Set<String>>([])
    private let worker = DispatchQueue(label: "tailor.server.fine-tuning", qos: .utility)
    /// Checkpoints kept per job (the latest improving adapters), as OpenAI keeps three.
    static let keptCheckpoints = 3

    init(backend: Backend, directory: URL) {
        self.backend = backend
        self.directory = directory
    }

    private func folder(_ id: String) -> URL { directory.appendingPathComponent(id) }
    func outputFolder(_ id: String) -> URL { folder(id).appendingPathComponent("output") }

    static func notFound(_ id: String) -> OpenAIError {
        OpenAIError.notFound("No fine-tuning job '\(id)' (GET /v1/fine_tuning/jobs lists them)", param: "fine_tuning_job_id", code: "fine_tuning_job_not_found")
    }

    static func isID(_ s: String) -> Bool {
        s.hasPrefix("ftjob-") && s.count < 64 && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    func get(_ id: String) throws -> FineTuningJob {
        if let j = jobs.withLock({ $0[id] }) { return j }
        guard Self.isID(id), let data = try? Data(contentsOf: folder(id).appendingPathComponent("job.json")),
              let j = try? JSONDecoder().decode(FineTuningJob.self, from: data) else { throw Self.notFound(id) }
        jobs.withLock { $0[id] = j }
        return j
    }

    @discardableResult
    private func update(_ id: String, _ change: (inout FineTuningJob) -> Void) throws -> FineTuningJob {
        var j = try get(id)
        change(&j)
        try FileManager.default.createDirectory(at: folder(id), withIntermediateDirectories: true)
        try JSONEncoder().encode(j).write(to: folder(id).appendingPathComponent("job.json"), options: .atomic)
        jobs.withLock { $0[id] = j }
        return j
    }

    private func event(_ id: String, _ message: String, level: String = "info", type: String = "message", data: [String: JSONValue]? = nil) {
        let e = JobEvent(id: APIRoutes.newID("ftevent-"), created_at: Int(Date().timeIntervalSince1970), level: level, message: message, type: type, data: data)
        guard let line = try? JSONEncoder().encode(e) else { return }
        let url = folder(id).appendingPathComponent("events.jsonl")
        if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
        guard let h = try? FileHandle(forWritingTo: url) else { return }
        defer { try? h.close() }
        _ = try? h.seekToEnd()
        try? h.write(contentsOf: line + Data("\n".utf8))
    }

    // MARK: the API

    func create(_ r: FineTuningJobRequest) throws -> FineTuningJob {
        // The base model must be a served decoder, the files uploaded for fine-tuning.
        let base = try SystemName(parsing: r.model)
        guard base.adapter == nil, base.collection == nil else {
            throw OpenAIError.badRequest("model: give a base model (e.g. SmolLM2-135M-Instruct.Q4_1.gguf), not an adapter or a collection", param: "model")
        }
        let served = try backend.model(base.base)
        guard served.lm.model is LlamaModel else {
            throw OpenAIError.badRequest("model \(served.name): LoRA training supports Llama-family models (SmolLM2, Llama, Qwen2, Mistral)", param: "model")
        }
        for (f, param) in [(r.training_file, "training_file"), (r.validation_file, "validation_file")] {
            guard let f else { continue }
            let file: StoredFile
            do { file = try backend.files.get(f) } catch { throw OpenAIError.notFound("No file '\(f)' (upload it with POST /v1/files, purpose fine-tune)", param: param, code: "file_not_found") }
            guard file.purpose == "fine-tune" else {
                throw OpenAIError.badRequest("\(param) \(f) was uploaded with purpose '\(file.purpose)'; upload training data with purpose fine-tune", param: param)
            }
        }
        if let m = r.method, m.type != "supervised" {
            throw OpenAIError.badRequest("method type '\(m.type)': only supervised fine-tuning (LoRA) is available", param: "method.type")
        }
        let hp = r.method?.supervised?.hyperparameters ?? r.hyperparameters ?? Hyperparameters()
        _ = try options(hp, seed: r.seed ?? 42)
        let id = APIRoutes.newID("ftjob-")
        var resolved = hp
        resolved.n_epochs = .value(hp.n_epochs?.or(3) ?? 3)
        resolved.batch_size = .value(hp.batch_size?.or(8) ?? 8)
        resolved.learning_rate_multiplier = .value(hp.learning_rate_multiplier?.or(1) ?? 1)
        let job = FineTuningJob(id: id, created_at: Int(Date().timeIntervalSince1970), model: served.name, status: "queued",
                                hyperparameters: resolved, training_file: r.training_file, validation_file: r.validation_file,
                                seed: r.seed ?? 42, method: FineTuningMethod(type: "supervised", supervised: .init(hyperparameters: resolved)),
                                metadata: r.metadata, suffix: r.suffix)
        try FileManager.default.createDirectory(at: folder(id), withIntermediateDirectories: true)
        try JSONEncoder().encode(job).write(to: folder(id).appendingPathComponent("job.json"), options: .atomic)
        jobs.withLock { $0[id] = job }
        event(id, "Created fine-tuning job \(id) on \(served.name)")
        enqueue(id)
        return job
    }

    /// Tailor's training options from OpenAI's hyperparameters (the learning rate multiplier
    /// scales `tailor tune`'s 2e-4).
    func options(_ hp: Hyperparameters, seed: UInt64) throws -> TuneOptions {
        var o = TuneOptions()
        o.epochs = hp.n_epochs?.or(3) ?? 3
        o.batchSize = hp.batch_size?.or(8) ?? 8
        o.learningRate = Float(2e-4 * (hp.learning_rate_multiplier?.or(1) ?? 1))
        if let r = hp.lora_rank { o.rank = r; o.alpha = Float(2 * r) }
        o.maxSteps = hp.max_steps
        if let m = hp.max_length { o.maxLength = m }
        o.seed = seed
        do { try o.validate() } catch {
            throw OpenAIError.badRequest("hyperparameters: \(error)", param: "hyperparameters")
        }
        guard (1...50).contains(o.epochs) else { throw OpenAIError.badRequest("n_epochs must be from 1 to 50", param: "hyperparameters.n_epochs") }
        guard o.learningRate > 0, o.learningRate.isFinite else { throw OpenAIError.badRequest("learning_rate_multiplier must be positive", param: "hyperparameters.learning_rate_multiplier") }
        return o
    }

    func list() -> [FineTuningJob] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return ids.compactMap { try? get($0) }.sorted { ($0.created_at, $0.id) > ($1.created_at, $1.id) }
    }

    /// Newest first, as OpenAI lists them.
    func events(_ id: String, limit: Int) throws -> [JobEvent] {
        _ = try get(id)
        let text = (try? String(contentsOf: folder(id).appendingPathComponent("events.jsonl"), encoding: .utf8)) ?? ""
        let all = text.split(separator: "\n").compactMap { try? JSONDecoder().decode(JobEvent.self, from: Data($0.utf8)) }
        return Array(all.reversed().prefix(limit))
    }

    func checkpoints(_ id: String) throws -> [JobCheckpoint] {
        let job = try get(id)
        let dir = folder(id).appendingPathComponent("checkpoints")
        let steps = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).compactMap { n -> Int? in
            n.hasPrefix("step-") ? Int(n.dropFirst(5)) : nil
        }
        return steps.sorted(by: >).compactMap { s in
            let d = dir.appendingPathComponent("step-\(s)")
            guard let data = try? Data(contentsOf: d.appendingPathComponent("metrics.json")),
                  let metrics = try? JSONDecoder().decode([String: Double].self, from: data) else { return nil }
            let created = (try? FileManager.default.attributesOfItem(atPath: d.path)[.modificationDate] as? Date).map { Int($0.timeIntervalSince1970) } ?? job.created_at
            return JobCheckpoint(id: "ftckpt-\(id.dropFirst(6))-\(s)", created_at: created,
                                 fine_tuned_model_checkpoint: "\(job.model)+lora:\(id)-step-\(s)", step_number: s, metrics: metrics, fine_tuning_job_id: id)
        }
    }

    func cancel(_ id: String) throws -> FineTuningJob {
        let job = try get(id)
        guard !job.isFinished else {
            throw OpenAIError.badRequest("Job \(id) has already \(job.status == "cancelled" ? "been cancelled" : job.status)", param: "fine_tuning_job_id")
        }
        cancelled.withLock { _ = $0.insert(id) }
        let wasQueued = pending.withLock { p -> Bool in
            guard let i = p.queue.firstIndex(of: id) else { return false }
            p.queue.remove(at: i)
            return true
        }
        if wasQueued || job.status == "queued" && pending.withLock({ $0.running != id }) {
            event(id, "Fine-tuning job cancelled")
            return try update(id) { $0.status = "cancelled"; $0.finished_at = Int(Date().timeIntervalSince1970) }
        }
        // Running: the trainer stops at its next step and the worker marks the job.
        return try get(id)
    }

    /// The adapter folder a `+lora:` name gives, when it names a succeeded job or a checkpoint.
    func adapterPath(_ name: String) -> String? {
        if let r = name.range(of: "-step-", options: .backwards), let step = Int(name[r.upperBound...]) {
            let d = folder(String(name[..<r.lowerBound])).appendingPathComponent("checkpoints/step-\(step)")
            return FileManager.default.fileExists(atPath: d.appendingPathComponent(AdapterFiles.peftConfig).path) ? d.path : nil
        }
        guard Self.isID(name), let job = try? get(name), job.status == "succeeded" else { return nil }
        return outputFolder(name).path
    }

    // MARK: the worker

    func resumeInterrupted() {
        for job in list().reversed() where job.status == "running" || job.status == "queued" || job.status == "validating_files" {
            event(job.id, "The server restarted: the job resumes" + (job.status == "running" ? " from its last checkpoint" : ""))
            enqueue(job.id)
        }
    }

    private func enqueue(_ id: String) {
        let start = pending.withLock { p -> Bool in
            p.queue.append(id)
            return p.running == nil
        }
        if start { worker.async { self.drain() } }
    }

    private func drain() {
        while let id = pending.withLock({ p -> String? in
            if p.queue.isEmpty { p.running = nil; return nil }
            p.running = p.queue.removeFirst()
            return p.running
        }) {
            run(id)
        }
    }


    private func run(_ id: String) {
        guard var job = try? get(id), !job.isFinished else { return }
        func fail(_ code: String, _ message: String, param: String? = nil) {
            event(id, "Fine-tuning job failed: \(message)", level: "error")
            _ = try? update(id) { $0.status = "failed"; $0.error = JobError(code: code, message: message, param: param); $0.finished_at = Int(Date().timeIntervalSince1970) }
        }
        do {
            job = try update(id) { $0.status = "validating_files" }
            let served = try backend.model(job.model, waitWhileLoading: true)
            let train = try backend.files.get(job.training_file)
            let validation = try job.validation_file.map { try backend.files.get($0) }
            var options = try self.options(job.hyperparameters, seed: job.seed)
            options.targets = LoRATarget.allCases
            // Training runs in exact precision on its own copy of the base's weights (the served
            // copy stays immutable); both compute on the process's one scheduler.
            let lm = try LanguageModel(served.lm.path, threads: backend.configuration.threads, precision: .exact)
            let prepared: PreparedDataset
            do {
                prepared = try ExampleFormatter(model: lm).prepare(train: backend.files.path(train).path, validation: validation.map { backend.files.path($0).path },
                                                                   validationFraction: validation == nil ? 0.1 : 0, seed: job.seed, maxLength: options.maxLength)
            } catch {
                fail("invalid_training_file", "\(train.filename): \(error)", param: "training_file")
                return
            }
            for n in prepared.notes { event(id, n, level: "warn") }
            let out = outputFolder(id)
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let trainer = try LoRATrainer(model: lm, train: prepared.train, validation: prepared.validation, options: options,
                                          outputDirectory: out.path, threads: backend.configuration.threads)
            trainer.stopRequested = { [weak self] in self?.cancelled.withLock { $0.contains(id) } ?? true }
            job = try update(id) { $0.status = "running"; $0.total_steps = trainer.totalSteps }
            event(id, "Fine-tuning started: \(prepared.train.count) training examples, \(prepared.validation.count) for validation, \(trainer.totalSteps) steps")
            var lastWrite = Date.distantPast
            let summary = try trainer.run { [weak self] e in
                guard let self else { return }
                if let r = e.resumedFrom { self.event(id, "Resumed from the checkpoint at step \(r)"); return }
                var data: [String: JSONValue] = ["step": .int(e.step), "total_steps": .int(e.totalSteps), "epoch": .double(e.epoch)]
                if let l = e.loss { data["train_loss"] = .double(l) }
                if let v = e.validationLoss { data["valid_loss"] = .double(v) }
                self.event(id, "Step \(e.step)/\(e.totalSteps)" + (e.loss.map { String(format: ": training loss=%.4f", $0) } ?? "")
                           + (e.validationLoss.map { String(format: ", validation loss=%.4f", $0) } ?? ""), type: "metrics", data: data)
                // A validation that improved (or any save without a validation set): a checkpoint.
                if e.improved || (e.validationLoss == nil && prepared.validation.isEmpty && (e.step == e.totalSteps || e.step % trainer.evalEvery == 0)) {
                    self.keepCheckpoint(id, step: e.step, trainLoss: e.loss, validLoss: e.validationLoss)
                }
                if e.validationLoss != nil || Date().timeIntervalSince(lastWrite) > 1 || e.step == e.totalSteps {
                    lastWrite = Date()
                    let finish = Int(Date().timeIntervalSince1970 + e.eta)
                    _ = try? self.update(id) { j in
                        j.step = e.step; j.train_loss = e.loss ?? j.train_loss; j.valid_loss = e.validationLoss ?? j.valid_loss
                        j.estimated_finish = finish
                    }
                }
            }
            if cancelled.withLock({ $0.contains(id) }) {
                event(id, "Fine-tuning job cancelled at step \(summary.steps)")
                _ = try update(id) { $0.status = "cancelled"; $0.finished_at = Int(Date().timeIntervalSince1970); $0.estimated_finish = nil }
                return
            }
            let model = "\(job.model)+lora:\(id)"
            _ = try update(id) { j in
                j.status = "succeeded"; j.finished_at = Int(Date().timeIntervalSince1970); j.fine_tuned_model = model
                j.trained_tokens = summary.trainedTokens; j.estimated_finish = nil; j.step = summary.steps
                j.result_files = []
            }
            event(id, "The job has successfully completed: \(summary.steps) steps" + (summary.bestValidationLoss.map { String(format: ", best validation loss %.4f", $0) } ?? "")
                  + "; use it as model \(model)")
        } catch let e as OpenAIError {
            fail(e.code ?? "error", e.message)
        } catch {
            fail("training_error", "\(error)")
        }
    }

    /// Copies the adapter the trainer just saved to checkpoints/step-N (the latest three kept).
    private func keepCheckpoint(_ id: String, step: Int, trainLoss: Double?, validLoss: Double?) {
        let fm = FileManager.default
        let dir = folder(id).appendingPathComponent("checkpoints")
        let d = dir.appendingPathComponent("step-\(step)")
        try? fm.removeItem(at: d)
        do {
            try fm.createDirectory(at: d, withIntermediateDirectories: true)
            for f in [AdapterFiles.peftWeights, AdapterFiles.peftConfig] {
                try fm.copyItem(at: outputFolder(id).appendingPathComponent(f), to: d.appendingPathComponent(f))
            }
            var metrics: [String: Double] = ["step": Double(step)]
            if let trainLoss { metrics["train_loss"] = trainLoss }
            if let validLoss { metrics["valid_loss"] = validLoss }
            try JSONEncoder().encode(metrics).write(to: d.appendingPathComponent("metrics.json"))
        } catch {
            event(id, "Could not keep the checkpoint of step \(step): \(error)", level: "warn")
            return
        }
        let steps = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted(by: >)
        for old in steps.dropFirst(Self.keptCheckpoints) { try? fm.removeItem(at: dir.appendingPathComponent("step-\(old)")) }
    }
}
