import ArgumentParser
import Foundation
import TailorEval
import TailorFormats
import TailorModels

struct EvalClassify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Accuracy and macro-F1 of a model (optionally with an adapter) used as a classifier on {\"input\", \"label\"} items.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Items: JSONL {\"input\", \"label\"} per line.") var data: String
    @Option(help: "The prompt: {input} is the item's text, {labels} the labels.") var template: String = LabelClassifier.defaultTemplate
    @Option(help: "Labels, comma-separated (default: those in the data).") var labels: String?
    @Option(help: "Evaluate only the first N items.") var limit: Int?
    @Option(name: .shortAndLong, help: "Write each prediction to this JSONL file.") var output: String?
    @Flag(help: "Print the results as JSON.") var json = false

    func run() async throws {
        installInterruptHandler()
        try runReportingErrors {
            let set = try EvalSet.load(data)
            guard set.kind == .classification else {
                throw EvalError.badLine(path: data, line: 1, detail: "these are \(set.kind.rawValue) items; classify needs {\"input\", \"label\"}")
            }
            let lm = try loadModel(modelOptions)
            let labelList = labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? set.labels
            var items = set.items
            if let limit { items = Array(items.prefix(limit)) }
            let clf = LabelClassifier(model: lm, labels: labelList, template: template.replacingOccurrences(of: "\\n", with: "\n"))
            var preds: [LabelClassifier.Prediction] = []
            let line = ProgressLine()
            var out = ""
            for (i, it) in items.enumerated() {
                if stopRequested.load(ordering: .relaxed) { break }
                let p = try clf.predict(it.input)
                preds.append(p)
                let correct = preds.enumerated().filter { $0.element.label == items[$0.offset].references[0] }.count
                line.update(String(format: "%d/%d items · accuracy so far %.1f%%", i + 1, items.count, 100 * Double(correct) / Double(i + 1)))
                out += JSONValue.object([("id", .string(it.id)), ("label", .string(it.references[0])),
                                         ("prediction", p.label.map { .string($0) } ?? .null), ("answer", .string(p.answer))]).serialized() + "\n"
            }
            line.finish()
            if let output { try out.write(toFile: output, atomically: true, encoding: .utf8) }
            let gold = items.prefix(preds.count).map { $0.references[0] }
            let correct = zip(preds, gold).map { $0.label == $1 ? 1.0 : 0.0 }
            let acc = Estimate(correct)
            let predicted = preds.map(\.label)
            let f1 = Estimate(resampling: preds.count) { idx in Metric.macroF1(predictions: idx.map { predicted[$0] }, gold: idx.map { gold[$0] }) }
            let unparsed = preds.filter { $0.label == nil }.count
            let secs = preds.map(\.seconds).sorted()
            if json {
                let obj: JSONValue = .object([
                    ("items", .int(preds.count)), ("accuracy", .double(acc.mean)), ("accuracy_low", .double(acc.low)), ("accuracy_high", .double(acc.high)),
                    ("macro_f1", .double(f1.mean)), ("macro_f1_low", .double(f1.low)), ("macro_f1_high", .double(f1.high)),
                    ("unparsed", .int(unparsed)), ("labels", .array(labelList.map { .string($0) })),
                    ("latency_p50_seconds", .double(secs.isEmpty ? 0 : secs[secs.count / 2])),
                ])
                print(obj.serialized())
            } else {
                print(String(format: "accuracy %.1f%% (95%% CI %.1f–%.1f) · macro-F1 %.3f (%.3f–%.3f) · %d items · %d answers named no label",
                             100 * acc.mean, 100 * acc.low, 100 * acc.high, f1.mean, f1.low, f1.high, preds.count, unparsed))
            }
        }
    }
}
