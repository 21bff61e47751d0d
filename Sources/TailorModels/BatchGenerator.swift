// Many requests, one model: continuous batching (Yu et al. 2022, Orca). One thread steps every
// active sequence together: each step feeds every decoding sequence its next token and the
// prefilling ones a chunk of their prompt, in one forward pass that reads each weight matrix once
// for all of them. Requests join and leave between steps; each has its own sampling settings,
// stop strings, token budget, adapters and precision. Long prompts are cut into chunks so that a
// step never holds more than `prefillBudget` prompt tokens: a long prompt delays the others'
// next tokens by at most that much work. Prompt prefixes shared by requests are computed once
// (`PrefixCache`).
import Foundation
import Synchronization
import TailorKernels
import TailorTokenizers

/// One request to generate.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stop: [String]
    public var adapters: [AdapterUse]
    /// nil: the model's.
    public var precision: Precision?
    /// Positions its cache may hold (default: prompt + maxTokens, within the model's context).
    public var contextTokens: Int?
    /// Go on past end-of-generation tokens (benchmarks: always `maxTokens` tokens).
    public var ignoreEndOfGeneration = false
    /// Only text of this form is generated (`.jsonObject`: one JSON object, then the end).
    public var constraint: GenerationConstraint? = nil

    public init(prompt: [Int], maxTokens: Int = 128, sampling: SamplingParameters = .greedy, stop: [String] = [],
                adapters: [AdapterUse] = [], precision: Precision? = nil, contextTokens: Int? = nil) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.adapters = adapters
        self.precision = precision
        self.contextTokens = contextTokens
    }
}

/// What a request hears while it runs.
public enum GenerationEvent: Sendable {
    /// Text ready to show (whole characters, stop strings held back).
    case text(String)
    /// The end: the whole result.
    case finished(GenerationResult)
    /// It could not run (a bad token, a prompt longer than the context, the engine stopped).
    case failed(ModelError)
}

/// A request in flight: cancel it, or wait for it.
public final class GenerationHandle: Sendable {
    public let id: Int
    let cancelled = Atomic<Bool>(false)
    init(id: Int) { self.id = id }
    /// Stops the request at the next step; it finishes with `.cancelled` and frees its slot.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }
}

/// Counters of a batch generator since it started.
public struct BatchStatistics: Sendable, Codable {
    public var steps = 0
    public var decodedTokens = 0
    public var prefilledTokens = 0
    public var finishedRequests = 0
    public var activeSequences = 0
    public var queuedRequests = 0
    /// Seconds of forward passes.
    public var busySeconds = 0.0
    public var prefix: PrefixCache.Statistics?
}

/// What one step did, for measurements.
public struct BatchStep: Sendable {
    /// Sequences that decoded a token, and prompt tokens computed.
    public var decodeTokens: Int
    public var prefillTokens: Int
    public var seconds: Double
}

// @unchecked Sendable: the queue and counters are guarded by `lock`; sequences are touched only by
// the stepping thread once admitted.
public final class BatchGenerator: @unchecked Sendable {
    public let model: LanguageModel
    /// Most sequences stepped together; more requests wait in line, first come first served.
    public let maxSequences: Int
    /// Most prompt tokens of one sequence per step, and of all sequences per step.
    public let prefillChunk: Int
    public let prefillBudget: Int
    public let prefixCache: PrefixCache?
    /// Called on the stepping thread after every step (benchmarks).
    public var onStep: (@Sendable (BatchStep) -> Void)?

    private let lock = NSCondition()
    private var queue: [Sequence] = []          // guarded by lock
    private var stopping = false                // guarded by lock
    private var nextID = 0                      // guarded by lock
    private var stats = BatchStatistics()       // guarded by lock
    private var thread: Thread?

    /// `prefixCacheBytes` 0 turns prefix reuse off.
    public init(model: LanguageModel, maxSequences: Int = 64, prefillChunk: Int = 256, prefillBudget: Int? = nil,
                prefixCacheBytes: Int = 256 << 20) {
        self.model = model
        self.maxSequences = max(1, maxSequences)
        self.prefillChunk = max(1, prefillChunk)
        self.prefillBudget = max(self.prefillChunk, prefillBudget ?? prefillChunk)
        prefixCache = prefixCacheBytes > 0 ? PrefixCache(capacityBytes: prefixCacheBytes) : nil
        let t = Thread { [weak self] in self?.run() }
        t.name = "tailor-batch"
        t.stackSize = 4 << 20
        thread = t
        t.start()
    }

    deinit { shutdown() }

    /// Stops stepping: requests still queued or running fail with a message saying so.
    public func shutdown() {
        lock.lock()
        stopping = true
        lock.broadcast()
        lock.unlock()
    }

    /// Queues a request; `onEvent` is called on the stepping thread with its text and its end
    /// (return false from it to cancel). Keep it quick: every sequence waits for it.
    @discardableResult
    public func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (GenerationEvent) -> Bool) -> GenerationHandle {
        lock.lock()
        defer { lock.unlock() }
        nextID += 1
        let handle = GenerationHandle(id: nextID)
        if stopping {
            _ = onEvent(.failed(.badBatch("the generator has been shut down")))
            return handle
        }
        queue.append(Sequence(request: request, handle: handle, onEvent: onEvent))
        lock.broadcast()
        return handle
    }

    /// Runs a request and waits for it; `onText` receives its text as it comes (on the stepping
    /// thread; return false to stop).
    public func generate(_ request: GenerationRequest, onText: @escaping @Sendable (String) -> Bool = { _ in true }) throws -> GenerationResult {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<GenerationResult, ModelError>?>(nil)
        // The engine may still hold its handler for a moment after `done` is signalled: it holds
        // `sink`, emptied before returning, so `onText` is not referenced once this returns (a
        // caller may hand in a closure made with `withoutActuallyEscaping`).
        let sink = Mutex<(@Sendable (String) -> Bool)?>(onText)
        submit(request) { event in
            switch event {
            case .text(let t): return sink.withLock { $0?(t) } ?? false
            case .finished(let r): outcome.withLock { $0 = .success(r) }; done.signal()
            case .failed(let e): outcome.withLock { $0 = .failure(e) }; done.signal()
            }
            return true
        }
        done.wait()
        sink.withLock { $0 = nil }
        return try outcome.withLock { $0! }.get()
    }

    /// The request's text as an asynchronous stream; the stream's end carries the result through
    /// `result` (or throws the request's error). Cancelling the iterating task cancels the
    /// request; a consumer that stops iterating for another reason (a failed write to a client
    /// that left) calls `cancel`, since the stream itself lives on with the request.
    public func stream(_ request: GenerationRequest) -> (text: AsyncThrowingStream<String, Error>, result: @Sendable () async throws -> GenerationResult,
                                                         cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncThrowingStream<String, Error>.makeStream()
        let final = FinalResult()
        let handle = submit(request) { event in
            switch event {
            case .text(let t):
                if case .terminated = continuation.yield(t) { return false }
            case .finished(let r): final.set(.success(r)); continuation.finish()
            case .failed(let e): final.set(.failure(e)); continuation.finish(throwing: e)
            }
            return true
        }
        continuation.onTermination = { reason in if case .cancelled = reason { handle.cancel() } }
        return (stream, { try await final.value() }, { handle.cancel() })
    }

    public var statistics: BatchStatistics {
        lock.lock()
        var s = stats
        s.queuedRequests = queue.count
        lock.unlock()
        s.prefix = prefixCache?.statistics
        return s
    }

    // MARK: stepping

    /// One request's state once admitted.
    final class Sequence {
        let request: GenerationRequest
        let handle: GenerationHandle
        let onEvent: @Sendable (GenerationEvent) -> Bool
        var session: DecoderSession!
        var sampler: Sampler
        var text: GeneratedText!
        /// Finished (its result sent): it leaves the batch after the step.
        var done = false
        var computed = 0                    // prompt tokens in the cache
        var cachedPrompt = 0                // of which reused from the prefix cache
        var generated: [Int] = []
        var next: Int?                      // the sampled token to feed
        let submitted = Date()
        var admitted = Date()
        var prefillDone: Date?
        /// The JSON generated so far (with a `.jsonObject` constraint).
        var json: JSONPrefix?

        init(request: GenerationRequest, handle: GenerationHandle, onEvent: @escaping @Sendable (GenerationEvent) -> Bool) {
            self.request = request
            self.handle = handle
            self.onEvent = onEvent
            sampler = Sampler(request.sampling)
        }
        var prefilling: Bool { computed < request.prompt.count }
    }

    private func run() {
        var active: [Sequence] = []
        while true {
            lock.lock()
            while active.isEmpty && queue.isEmpty && !stopping { lock.wait() }
            if stopping {
                let left = queue
                queue = []
                lock.unlock()
                for s in left + active { _ = s.onEvent(.failed(.badBatch("the generator has been shut down"))) }
                return
            }
            var admitted: [Sequence] = []
            while active.count + admitted.count < maxSequences, !queue.isEmpty { admitted.append(queue.removeFirst()) }
            lock.unlock()
            for s in admitted where admit(s) {
                active.append(s)
                lock.lock(); stats.activeSequences += 1; lock.unlock()
            }
            if active.isEmpty { continue }
            step(&active)
        }
    }

    /// Sets a new sequence up; false (after telling it) when it cannot run.
    private func admit(_ s: Sequence) -> Bool {
        let r = s.request
        let lm = model
        guard !r.prompt.isEmpty else { _ = s.onEvent(.failed(.emptyPrompt)); return false }
        if let bad = r.prompt.first(where: { $0 < 0 || $0 >= lm.model.vocabularySize }) {
            _ = s.onEvent(.failed(.badToken(bad, vocabularySize: lm.model.vocabularySize))); return false
        }
        let context = min(lm.model.contextLength, r.contextTokens ?? (r.prompt.count + max(0, r.maxTokens) + 1))
        guard r.prompt.count < context else {
            _ = s.onEvent(.failed(.contextFull(used: 0, adding: r.prompt.count, limit: context))); return false
        }
        s.session = lm.session(precision: r.precision, adapters: r.adapters, maxTokens: context)
        s.text = GeneratedText(tokenizer: lm.tokenizer, stop: r.stop)
        if r.constraint == .jsonObject { s.json = JSONPrefix(objectOnly: true) }
        s.admitted = Date()
        if let prefixCache {
            s.computed = prefixCache.restore(r.prompt, into: s.session)
            s.cachedPrompt = s.computed
        }
        return true
    }

    private func step(_ active: inout [Sequence]) {
        // Cancelled requests leave before the step.
        for s in active where s.handle.cancelled.load(ordering: .relaxed) { finish(s, .cancelled) }
        active.removeAll { $0.done }
        if active.isEmpty { return }
        var steps: [DecoderStep] = []
        var members: [Sequence] = []
        var prefill = 0, decode = 0
        for s in active where !s.prefilling {
            steps.append(DecoderStep(s.session, tokens: [s.next!]))
            members.append(s)
            decode += 1
        }
        // Whole chunks of the prompts still being computed, oldest first, within the budget.
        for s in active where s.prefilling {
            let n = min(prefillChunk, s.request.prompt.count - s.computed)
            if prefill > 0 && prefill + n > prefillBudget { break }
            steps.append(DecoderStep(s.session, tokens: Array(s.request.prompt[s.computed..<(s.computed + n)])))
            members.append(s)
            prefill += n
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        // One forward pass per precision present (each pass needs one arithmetic).
        var logits = [[Float]](repeating: [], count: steps.count)
        var failure: (Int, ModelError)?
        for precision in Precision.allCases {
            let idx = steps.indices.filter { steps[$0].session.precision == precision }
            guard !idx.isEmpty else { continue }
            do {
                // The whole pass holds the compute scheduler: with others computing (a
                // fine-tuning job, an embedding batch) a step waits behind one of their
                // operations, not behind one per operation of the step.
                let out = try model.model.pool.withTurn { try model.model.forward(idx.map { steps[$0] }) }
                for (j, i) in idx.enumerated() { logits[i] = out[j] }
            } catch let e as ModelError {
                failure = (idx[0], e)
            } catch {
                failure = (idx[0], .badBatch("\(error)"))
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if let (_, e) = failure {
            // A pass failed (it should not: every request was checked when admitted): its
            // sequences cannot go on.
            for (i, s) in members.enumerated() where logits[i].isEmpty {
                s.handle.cancel()
                lock.lock(); stats.activeSequences -= 1; lock.unlock()
                _ = s.onEvent(.failed(e))
            }
        }
        for (i, s) in members.enumerated() where !logits[i].isEmpty {
            if s.prefilling {
                s.computed += steps[i].tokens.count
                s.session.cache.tokens += steps[i].tokens
                if s.prefilling { continue }
                s.prefillDone = Date()
                prefixCache?.insert(s.request.prompt, from: s.session)
            } else {
                s.session.cache.tokens.append(s.next!)
            }
            if let reason = advance(s, logits[i]) { finish(s, reason) }
        }
        // Only the sequences that finished in this step: one cancelled meanwhile (its client
        // left during the pass) is finished at the start of the next, so it still gets its result.
        active.removeAll { $0.done }
        lock.lock()
        stats.steps += 1
        stats.decodedTokens += decode
        stats.prefilledTokens += prefill
        stats.busySeconds += seconds
        lock.unlock()
        onStep?(BatchStep(decodeTokens: decode, prefillTokens: prefill, seconds: seconds))
    }

    /// Samples the next token from `logits`; returns why the sequence ends, if it does (the
    /// token to feed is left in `next` otherwise).
    private func advance(_ s: Sequence, _ logits: [Float]) -> FinishReason? {
        if s.generated.count >= s.request.maxTokens { return .length }
        let tok: Int
        if s.json != nil {
            guard let t = constrainedSample(s, logits) else { return .stop }
            tok = t
        } else {
            tok = s.sampler.sample(logits, history: s.request.prompt + s.generated)
        }
        if !s.request.ignoreEndOfGeneration && model.tokenizer.endOfGeneration.contains(tok) { return .stop }
        s.generated.append(tok)
        let piece = s.text.push(tok)
        if s.text.hitStop { return .stop }
        if !piece.isEmpty && !s.onEvent(.text(piece)) { return .cancelled }
        if s.json?.isComplete == true { return .stop }
        // The last token needs no forward pass of its own.
        if s.generated.count >= s.request.maxTokens { return .length }
        if s.session.cache.count >= s.session.cache.maxTokens { return .context }
        s.next = tok
        return nil
    }

    /// A token that keeps the text the start of one JSON object: the sampler's pick, or its next
    /// pick with the rejected ones masked out, or else the likeliest token that fits; an end of
    /// generation only once the object is complete. nil when nothing fits.
    private func constrainedSample(_ s: Sequence, _ logits: [Float]) -> Int? {
        let tokenizer = model.tokenizer
        var masked = logits
        func accept(_ t: Int) -> Bool {
            if tokenizer.endOfGeneration.contains(t) { return s.json!.isComplete }
            let bytes = tokenizer.bytes(of: t)
            guard !bytes.isEmpty else { return false }
            var trial = s.json!
            guard trial.feed(bytes) else { return false }
            s.json = trial
            return true
        }
        for _ in 0..<32 {
            let t = s.sampler.sample(masked, history: s.request.prompt + s.generated)
            if accept(t) { return t }
            masked[t] = -.infinity
        }
        let order = masked.indices.filter { masked[$0].isFinite }.sorted { masked[$0] > masked[$1] }
        for t in order.prefix(4096) where accept(t) { return t }
        return nil
    }

    private func finish(_ s: Sequence, _ reason: FinishReason) {
        s.done = true
        s.handle.cancel()   // later calls of the request's handle change nothing
        if reason != .cancelled || s.text != nil {
            let rest = s.text?.finish() ?? ""
            if !rest.isEmpty { _ = s.onEvent(.text(rest)) }
        }
        let now = Date()
        let prefillEnd = s.prefillDone ?? now
        let result = GenerationResult(text: s.text?.text ?? "", tokens: s.generated, finishReason: reason,
                                      promptTokens: s.request.prompt.count,
                                      prefillSeconds: prefillEnd.timeIntervalSince(s.admitted),
                                      decodeSeconds: now.timeIntervalSince(prefillEnd), cachedPromptTokens: s.cachedPrompt,
                                      queueSeconds: s.admitted.timeIntervalSince(s.submitted))
        lock.lock()
        stats.finishedRequests += 1
        stats.activeSequences -= 1
        lock.unlock()
        _ = s.onEvent(.finished(result))
    }
}

/// The result a stream ends with, for whoever asks after (or before) it arrives.
final class FinalResult: Sendable {
    private let state = Mutex<(Result<GenerationResult, ModelError>?, [CheckedContinuation<GenerationResult, Error>])>((nil, []))
    func set(_ r: Result<GenerationResult, ModelError>) {
        let waiters = state.withLock { s -> [CheckedContinuation<GenerationResult, Error>] in
            s.0 = r
            defer { s.1 = [] }
            return s.1
        }
        for w in waiters { w.resume(with: r.mapError { $0 as Error }) }
    }
    func value() async throws -> GenerationResult {
        try await withCheckedThrowingContinuation { c in
            let r = state.withLock { s -> Result<GenerationResult, ModelError>? in
                if s.0 == nil { s.1.append(c) }
                return s.0
            }
            if let r { c.resume(with: r.mapError { $0 as Error }) }
        }
    }
}
