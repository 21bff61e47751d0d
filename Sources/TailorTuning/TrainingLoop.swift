// The loop both trainers share (LoRA on a decoder, full fine-tuning of an encoder): optimizer
// steps, a validation at the start and every few steps, the best model saved when validation
// improves, early stopping after `patience` validations without improvement, metrics.jsonl and
// loss.svg, and an atomic checkpoint after each validation from which a re-run resumes — refused,
// with the differences named, when the options or the data are not the same.
import Foundation
import TailorFormats
import TailorModels

/// What a checkpoint records besides the weights and optimizer moments.
struct TrainingState<Options: Codable & Equatable>: Codable {
    var step = 0
    var bestLoss: Double?
    var bestAccuracy: Double?
    var bestStep: Int?
    var initialLoss: Double?
    var initialAccuracy: Double?
    var badEvaluations = 0
    /// Tokens (LoRA) or examples (encoders) trained on.
    var trained = 0
    var seconds = 0.0
    var stoppedEarly = false
    var options: Options
    var dataFingerprint: UInt64
}

struct Validation {
    var loss: Double
    var accuracy: Double?
}

struct StepOutcome {
    var loss: Double
    var gradNorm: Float
    /// Tokens or examples in the step.
    var units: Int
}

struct TrainingLoop<Options: Codable & Equatable> {
    var outputDirectory: String
    var options: Options
    var dataFingerprint: UInt64
    var totalSteps: Int
    var stepsPerEpoch: Int
    var evalEvery: Int
    var patience: Int
    /// The unit counted per step: "tokens" or "samples" (metrics keys and the display's rate).
    var unit: String
    var learningRate: (Int) -> Float
    var step: (Int) throws -> StepOutcome
    var validate: () throws -> Validation?
    /// Whether a validation beats the best so far.
    var improves: (Validation, TrainingState<Options>) -> Bool
    /// Writes the current model as the best one.
    var saveBest: () throws -> Void
    /// Named tensors (weights, optimizer moments) that a checkpoint holds.
    var checkpointTensors: () -> [(String, [Float])]
    /// Restores them from a checkpoint; throws when they do not fit.
    var restore: (SafetensorsFile) throws -> Void
    var stopRequested: () -> Bool
    var afterCheckpoint: (Int) throws -> Void

    struct Outcome {
        var state: TrainingState<Options>
        var resumedFrom: Int?
        var unitsPerSecond: Double
        var lastLoss: Double?
    }

    static var checkpointName: String { "checkpoint.safetensors" }
    var checkpointPath: String { outputDirectory + "/" + Self.checkpointName }

    func run(_ report: (TrainingEvent) -> Void) throws -> Outcome {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        var state = TrainingState(options: options, dataFingerprint: dataFingerprint)
        var resumedFrom: Int?
        if FileManager.default.fileExists(atPath: checkpointPath) {
            state = try loadCheckpoint()
            resumedFrom = state.step
        }
        var metrics = try MetricsLog(path: outputDirectory + "/metrics.jsonl", keepThroughStep: resumedFrom ?? -1)
        if resumedFrom == nil {
            if let v0 = try validate() {
                // The starting model is the first candidate for the best one.
                state.initialLoss = v0.loss; state.initialAccuracy = v0.accuracy
                state.bestLoss = v0.loss; state.bestAccuracy = v0.accuracy; state.bestStep = 0
                try saveBest()
                metrics.append(Self.validationLine(step: 0, epoch: 0, v0, peak: false))
                report(TrainingEvent(step: 0, totalSteps: totalSteps, epoch: 0, validationLoss: v0.loss, learningRate: learningRate(0),
                                     tokensPerSecond: 0, elapsed: 0, eta: 0, validationAccuracy: v0.accuracy))
            }
        } else if let r = resumedFrom {
            report(TrainingEvent(step: r, totalSteps: totalSteps, epoch: Double(r) / Double(stepsPerEpoch), bestValidationLoss: state.bestLoss,
                                 learningRate: learningRate(r), tokensPerSecond: 0, elapsed: state.seconds, eta: 0, resumedFrom: r))
        }
        let startSeconds = state.seconds
        let clock = ContinuousClock(), t0 = clock.now
        var runUnits = 0, trainSeconds = 0.0
        var lastLoss: Double?
        while state.step < totalSteps && !state.stoppedEarly {
            let s = state.step
            let ts = clock.now
            let r = try step(s)
            trainSeconds += (clock.now - ts).seconds
            state.step = s + 1
            state.trained += r.units
            runUnits += r.units
            let runSeconds = (clock.now - t0).seconds
            state.seconds = startSeconds + runSeconds
            lastLoss = r.loss
            let rate = Double(runUnits) / max(trainSeconds, 1e-9)
            let epoch = Double(state.step) / Double(stepsPerEpoch)
            let eta = runSeconds / Double(state.step - (resumedFrom ?? 0)) * Double(totalSteps - state.step)
            var event = TrainingEvent(step: state.step, totalSteps: totalSteps, epoch: epoch, loss: r.loss, bestValidationLoss: state.bestLoss,
                                      learningRate: learningRate(s), gradNorm: r.gradNorm, tokensPerSecond: unit == "tokens" ? rate : 0,
                                      elapsed: state.seconds, eta: eta, samplesPerSecond: unit == "samples" ? rate : nil)
            metrics.append(.object([("step", .int(state.step)), ("epoch", .double(epoch)), ("loss", .double(r.loss)),
                                    ("lr", .double(Double(learningRate(s)))), ("grad_norm", .double(Double(r.gradNorm))),
                                    (unit, .int(r.units)), (unit + "_per_second", .double(rate)), ("elapsed", .double(state.seconds))]))
            let stop = stopRequested()
            if state.step % evalEvery == 0 || state.step == totalSteps || stop {
                if let val = try validate() {
                    event.validationLoss = val.loss
                    event.validationAccuracy = val.accuracy
                    metrics.append(Self.validationLine(step: state.step, epoch: epoch, val, peak: true))
                    if improves(val, state) {
                        state.bestLoss = val.loss; state.bestAccuracy = val.accuracy; state.bestStep = state.step
                        state.badEvaluations = 0
                        event.improved = true
                        try saveBest()
                    } else {
                        state.badEvaluations += 1
                        if state.badEvaluations >= patience && state.step < totalSteps { state.stoppedEarly = true }
                    }
                    event.bestValidationLoss = state.bestLoss
                } else {
                    try saveBest()
                }
                try metrics.flush()
                try LossCurve.write(metrics: metrics.lines, to: outputDirectory + "/" + LoRATrainer.curveName)
                try saveCheckpoint(state)
                report(event)
                try afterCheckpoint(state.step)
            } else {
                report(event)
            }
            if stop { break }
        }
        try metrics.flush()
        try LossCurve.write(metrics: metrics.lines, to: outputDirectory + "/" + LoRATrainer.curveName)
        return Outcome(state: state, resumedFrom: resumedFrom, unitsPerSecond: runUnits > 0 ? Double(runUnits) / max(trainSeconds, 1e-9) : 0,
                       lastLoss: lastLoss)
    }

    /// Example indices of optimizer step `s`, as micro-batches: epoch e visits the examples in a
    /// seeded shuffle of its own.
    static func batches(step s: Int, count: Int, stepsPerEpoch: Int, batch: Int, accumulation: Int, seed: UInt64) -> [[Int]] {
        let e = s / stepsPerEpoch, within = s % stepsPerEpoch
        var rng = SplitMix64(seed: seed &+ UInt64(e) &* 0x9E37_79B9)
        var order = Array(0..<count)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let perStep = batch * accumulation
        let chunk = Array(order[min(order.count, within * perStep)..<min(order.count, (within + 1) * perStep)])
        return stride(from: 0, to: chunk.count, by: batch).map { Array(chunk[$0..<min(chunk.count, $0 + batch)]) }
    }

    static func validationLine(step: Int, epoch: Double, _ v: Validation, peak: Bool) -> JSONValue {
        var f: [(String, JSONValue)] = [("step", .int(step)), ("epoch", .double(epoch)), ("val_loss", .double(v.loss))]
        if let a = v.accuracy { f.append(("val_accuracy", .double(a))) }
        if peak { f.append(("peak_rss", .int(DecoderBenchmark.peakResidentBytes()))) }
        return .object(f)
    }

    // MARK: checkpoints

    func saveCheckpoint(_ state: TrainingState<Options>) throws {
        var w = SafetensorsWriter()
        w.metadata = [("tailor_state", String(decoding: try JSONEncoder().encode(state), as: UTF8.self))]
        for (name, values) in checkpointTensors() { w.add(name, shape: [values.count], floats: values) }
        try w.write(to: checkpointPath)   // a temporary file, then a rename: never half a checkpoint
    }

    func loadCheckpoint() throws -> TrainingState<Options> {
        let p = checkpointPath
        func bad(_ r: String) -> TuningError { .badCheckpoint(path: p, reason: r) }
        let f: SafetensorsFile
        do { f = try SafetensorsFile(path: p) } catch { throw bad("\(error); delete it (or pass --fresh) to start over") }
        guard let json = f.metadata["tailor_state"], let state = try? JSONDecoder().decode(TrainingState<Options>.self, from: Data(json.utf8)) else {
            throw bad("no training state in the checkpoint; delete it (or pass --fresh) to start over")
        }
        guard state.options == options else {
            throw bad("it was made with other options (\(LoRATrainer.differences(state.options, options))); run with the same options to resume, or pass --fresh to start over")
        }
        guard state.dataFingerprint == dataFingerprint else {
            throw bad("it was made from other training or validation data; pass --fresh to start over")
        }
        do { try restore(f) } catch let e as TuningError { throw e } catch { throw bad("\(error)") }
        return state
    }
}
