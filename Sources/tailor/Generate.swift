import ArgumentParser
import Foundation
import TailorModels

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt (raw text; special tokens such as <|im_start|> are understood).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(name: [.short, .long], help: "The prompt text. Use - to read it from standard input.")
    var prompt: String

    @Option(name: [.short, .customLong("n-predict")], help: "Tokens to generate at most.")
    var n: Int = 128

    @Flag(help: "Print timing statistics to standard error.")
    var verbose = false

    @Flag(help: "Print one JSON object (text, token ids, timing) instead of streaming the text.")
    var json = false

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be 0 or more") }
    }

    func run() async throws {
        let text = prompt == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : prompt
        let lm = try loadModel(modelOptions)
        let ids = lm.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        guard !ids.isEmpty else { throw ValidationError("the prompt is empty: give some text with -p") }
        let cache = lm.makeCache(maxTokens: modelOptions.ctx ?? min(lm.model.contextLength, 4096))
        let gen = lm.generator(adapters: try modelOptions.adapters(lm))
        let result = try runReportingErrors {
            try gen.generate(prompt: ids, maxTokens: n, sampling: sampling.parameters, stop: sampling.stop,
                                        cache: cache) { piece in if !json { emit(piece) }; return true }
        }
        if json {
            let obj: [String: Any] = ["text": result.text, "tokens": result.tokens, "prompt_tokens": result.promptTokens,
                                      "finish_reason": result.finishReason.rawValue, "tokens_per_second": result.tokensPerSecond]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        emit("\n")
        if verbose {
            note(String(format: "prompt: %d tokens in %.2f s (%.1f tok/s); generated: %d tokens in %.2f s (%.1f tok/s); finish: %@",
                        result.promptTokens, result.prefillSeconds, Double(result.promptTokens) / max(result.prefillSeconds, 1e-9),
                        result.tokens.count, result.decodeSeconds, result.tokensPerSecond, result.finishReason.rawValue))
        }
    }
}
