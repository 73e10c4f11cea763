//! Binds Spin's `fermyon:spin/variables@2.0.0` to [`super`]: a component sees
//! only the variables its own `[component.<id>.variables]` declares, rendered
//! against the app's resolved values.

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::instance::InstanceState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-variables-host",
    imports: { default: async },
});

pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    SpinVariablesHost::add_to_linker::<_, HasSelf<InstanceState>>(linker, |state| state)?;
    Ok(())
}

impl fermyon::spin::variables::Host for InstanceState {
    async fn get(&mut self, name: String) -> Result<String, fermyon::spin::variables::Error> {
        use fermyon::spin::variables::Error;
        crate::interfaces::variables::validate_name(&name)
            .map_err(|e| Error::InvalidName(e.to_string()))?;
        let template = self
            .component
            .config
            .get(&name)
            .ok_or_else(|| Error::Undefined(format!("no variable for {name:?}")))?;
        self.component
            .variables
            .render(template)
            .map_err(|e| Error::Other(e.to_string()))
    }
}
